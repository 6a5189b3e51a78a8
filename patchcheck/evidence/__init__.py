"""Presence evidence beyond the tree's content: git history and distro changelogs."""
