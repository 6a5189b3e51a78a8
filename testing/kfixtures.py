"""Small kernel-like source trees and real diffs between them, built by the tests.

The C here is synthetic (made-up functions with distinct lines), never kernel source.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from patchcheck.model import TreeInfo
from patchcheck.trees.base import TreeView


def c_file(name: str, funcs: int = 6) -> str:
    """A C-like file whose every line is distinct, so hunks have one true place."""
    out = ["// SPDX-License-Identifier: GPL-2.0", f"/* {name}: synthetic test source */", '#include "state.h"', ""]
    for i in range(funcs):
        out += [
            f"static int {name}_op{i}(struct {name}_ctx *ctx, int arg{i})",
            "{",
            f"\tint ret{i} = 0;",
            "",
            f"\tif (!ctx->ready{i})",
            f"\t\treturn -{i + 1};",
            f"\tret{i} = {name}_helper{i}(ctx, arg{i});",
            f"\tctx->count{i} += ret{i};",
            f"\treturn ret{i};",
            "}",
            "",
        ]
    return "\n".join(out) + "\n"


MAKEFILE = "VERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\nEXTRAVERSION =\nNAME = test\n"


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


TWO_FILES = {"fs/a.c": c_file("a"), "fs/b.c": c_file("b")}  # a small tree of two C files


def three_hunk_fix(files: dict[str, str]) -> dict[str, str]:
    """``files`` with a fix applied: two hunks in fs/a.c, one in fs/b.c."""
    out = dict(files)
    out["fs/a.c"] = (
        out["fs/a.c"]
        .replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")
        .replace("\tctx->count4 += ret4;", "\tctx->count4 += ret4 & 0xff;")
    )
    out["fs/b.c"] = out["fs/b.c"].replace("\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)")
    return out


def make_diff(tmp: Path, old: Mapping[str, str | bytes], new: Mapping[str, str | bytes]) -> bytes:
    """A real git diff (a/ b/ prefixes, repo-relative paths) turning ``old`` into ``new``."""
    a = write_tree(tmp / "_diff_a", old)
    b = write_tree(tmp / "_diff_b", new)
    try:
        cp = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "--full-index", "_diff_a", "_diff_b"],
            cwd=tmp,
            capture_output=True,
            check=False,
        )
        if cp.returncode not in (0, 1):
            raise RuntimeError(cp.stderr.decode())
        return (
            cp.stdout.replace(b"a/_diff_a/", b"a/")
            .replace(b"b/_diff_b/", b"b/")
            .replace(b"_diff_a/", b"")
            .replace(b"_diff_b/", b"")
        )
    finally:
        subprocess.run(["rm", "-rf", str(a), str(b)], check=True)


class DictTree(TreeView):
    """An in-memory tree: the TreeView interface and nothing else."""

    def __init__(self, files: Mapping[str, str | bytes], name: str = "dict") -> None:
        self.files = {k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()}
        self.info = TreeInfo(name=name, source="<memory>", kind="folder")
        self.reads: list[str] = []

    def read(self, path: str) -> bytes | None:
        self.reads.append(path)
        return self.files.get(path)
