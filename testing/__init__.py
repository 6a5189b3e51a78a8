"""Test helpers shared by tests/ and bench/: fixtures, mail generators, a public-inbox server."""
