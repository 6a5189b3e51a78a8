"""Test helpers shared by tests/ and bench/: fixtures, mail generators, a public-inbox server,
tree builders and the one git-repository builder (gitrepo)."""
