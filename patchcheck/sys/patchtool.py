"""Every GNU patch command line patchcheck runs is built here.

Two callers: the engine (dry runs and real applies in its scratch area, diff on stdin,
results read from stdout) and the patched tree kinds (a package's patch queue applied in a
cache folder). Both run in a folder patchcheck owns, never in the user's tree.
"""

from __future__ import annotations

from pathlib import Path

from patchcheck.sys import proc


def argv(
    *,
    strip: int = 1,
    reverse: bool = False,
    dry_run: bool = False,
    fuzz: int | None = None,
    silent: bool = False,
    forward: bool = False,
    directory: Path | None = None,
    patch_file: Path | None = None,
) -> list[str]:
    """A GNU patch command line.

    Never asks, never keeps ``.orig`` files, throws rejects away, prints file names as they
    are (the engine parses them). ``forward``: a patch that looks reversed or already applied
    is skipped (``--batch --forward``, for a package's queue); otherwise it is applied as
    written, never guessed reversed (``--force``, which the engine's both-direction checks
    rely on). GNU patch (2.7+) does not follow symlinks it meets in the folder.
    """
    args = [
        "patch",
        f"-p{strip}",
        *(("--batch", "--forward") if forward else ("--force",)),
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "--quoting-style=literal",
    ]
    if reverse:
        args.append("--reverse")
    if dry_run:
        args.append("--dry-run")
    if fuzz is not None:
        args.append(f"--fuzz={fuzz}")
    if silent:
        args.append("--silent")
    if directory is not None:
        args += ["--directory", str(directory)]
    if patch_file is not None:
        args += ["--input", str(patch_file)]
    return args


def run(args: list[str], *, cwd: Path | None = None, input: bytes | None = None) -> proc.Result:
    """Run a command line made by ``argv``."""
    return proc.run(args, cwd=cwd, input=input)
