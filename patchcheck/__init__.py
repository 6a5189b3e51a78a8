"""patchcheck: is an upstream kernel fix in this tree, and can it be taken?"""

__version__ = "0.1.0"
