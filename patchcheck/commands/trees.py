"""`patchcheck trees list`: the named trees of the trees file, with what was detected in each:
kind, kernel version, distro, package release and the architecture it is read for."""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from patchcheck import config
from patchcheck.commands.common import tree_arch, tree_cache
from patchcheck.errors import EXIT_BAD_INPUT, EXIT_OK, TreeError
from patchcheck.trees import detect_kind, find_trees_file, load_trees_file, open_tree, registry
from patchcheck.trees.named import trees_file_places


def run(args: argparse.Namespace) -> int:
    trees_file = find_trees_file(config.trees_file(args.trees_file))
    if trees_file is None:
        places = " and ".join(str(p) for p in trees_file_places())
        print(
            f"no trees file (looked for {places}; --trees-file names one; see examples/trees.toml);"
            f" a tree is {registry.expected()}",
            file=sys.stderr,
        )
        return EXIT_OK
    trees = load_trees_file(trees_file)  # a malformed file is a TreeError: exit 2 via cli
    cache = tree_cache(args)
    limit = config.max_member_bytes(getattr(args, "max_member_bytes", None))
    arch = tree_arch(args)
    rows = []
    failed = False
    for name, named in trees.items():
        try:
            kind = detect_kind(named.path) if named.path.exists() else "?"
            tree = open_tree(name, cache_dir=cache, trees_file=trees_file, max_member_bytes=limit, arch=arch)
            info = tree.info
            rows.append([name, info.kind, info.version or "?", info.distro, info.release, info.arch, info.source])
        except TreeError as e:
            failed = True
            rows.append([name, kind, "error", None, None, None, str(e)])
    print(f"# {trees_file}")
    headers = ["name", "kind", "version", "distro", "release", "arch", "source"]
    print(tabulate(rows, headers=headers, missingval="-"))
    return EXIT_BAD_INPUT if failed else EXIT_OK
