"""`patchcheck backport`: each required patch of the chosen bugs, as it applies to the tree,
written to ``-o DIR`` as a ``git format-patch`` mail (``NNNN-<slug>.patch``), in order, each
checked on top of the ones written before it. A conflicting patch gets its failed hunks as
``NNNN-<slug>.rej``; a present one gets nothing. For trees with a patch queue (.dsc, SRPM)
the lines that add the written patches to it are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck import __version__, config
from patchcheck.bugs.select import Selection, select_bugs
from patchcheck.commands import common
from patchcheck.commands.common import Sources, TreeRequest
from patchcheck.errors import EXIT_FINDINGS, EXIT_NO_SERIES, EXIT_OK, BadInput, PatchcheckError, SeriesError
from patchcheck.model import Bug, Fix, Series, Verdict
from patchcheck.sys.paths import is_within

if TYPE_CHECKING:
    from patchcheck.engine.backport import Backporter, Step
    from patchcheck.trees.base import TreeView


@dataclass(frozen=True)
class BackportOptions:
    sources: Sources
    selection: Selection
    tree: TreeRequest  # one tree; its upstream clone and the prerequisite search
    out: Path


def options(args: argparse.Namespace) -> BackportOptions:
    return BackportOptions(
        sources=common.sources(args),
        selection=common.selection(args),
        tree=TreeRequest(
            (args.tree,),
            rev=args.rev,
            upstream_repo=args.upstream_repo,
            prereqs=common.prereq_limits(args),
            with_prereqs=args.with_prereqs,
        ),
        out=args.output_dir,
    )


@dataclass
class Written:
    """One line of the run's account: a patch and the file it got (if any)."""

    bug: str
    step: Step
    link: bool = False  # the patch came from the archive: its mail gets a Link: to the thread
    name: str | None = None  # the .patch or .rej file written for it


def check_out_dir(out: Path, tree: TreeView, inputs: list[Path]) -> None:
    """Refuse a DIR inside the tree or inside (or equal to) an input, one that is not a
    folder, or one that already holds patches (a stale 0003 would join the series)."""
    src = Path(tree.info.source)
    if src.is_dir() and is_within(out, src):
        raise BadInput(
            f"{out}: inside the tree {src}; patchcheck never writes into the tree (give another -o DIR)"
        )
    for p in inputs:
        if p.is_dir() and is_within(out, p):
            raise BadInput(f"{out}: inside the input folder {p} (give another -o DIR)")
    if out.exists() and not out.is_dir():
        what = "the tree" if os.path.samefile(out, src) else "a file"
        raise BadInput(f"{out}: is {what}, not a folder (expected -o DIR)")
    if out.is_dir():
        stale = sorted(p.name for p in out.iterdir() if p.suffix in (".patch", ".rej"))
        if stale:
            more = " and more" if len(stale) > 1 else ""
            raise BadInput(f"{out}: already holds {stale[0]}{more}; give an empty or new folder")


def lore_link(lore_url: str, msgid: str) -> str:
    """Where a reader finds the patch's thread: lore's short /r/ form, or the archive's."""
    from patchcheck.fetch.http import archive_base

    if lore_url.rstrip("/") == config.DEFAULT_LORE_URL:
        return f"{config.DEFAULT_LORE_URL}/r/{msgid}"
    return f"{archive_base(lore_url)}/{msgid}/"


def run(args: argparse.Namespace) -> int:
    return execute(options(args))


def execute(opts: BackportOptions) -> int:
    from patchcheck.engine.backport import Backporter
    from patchcheck.engine.check import MAX_HUNKS, over_limit
    from patchcheck.pipeline import fetch_all, fetched_paths, tree_context
    from patchcheck.trees import find_trees_file

    src = opts.sources
    limit = MAX_HUNKS if src.max_hunks is None else src.max_hunks
    bugs = select_bugs(common.known_bugs(src), opts.selection)
    tfile = find_trees_file(src.trees_file)
    tree = common.open_one_tree(src, opts.tree.specs[0], opts.tree.rev, tfile)
    inputs = [src.cache_dir, src.tree_cache, *src.bugs_dirs, *{b.path.parent for b in bugs}]
    inputs += [p for p in (tfile, opts.tree.upstream_repo) if p is not None]
    check_out_dir(opts.out, tree, inputs)
    source = common.fetcher(src)
    fetched = fetch_all(bugs, source, source.series_key, jobs=src.jobs)
    tree.prepare(fetched_paths(fetched, limit))
    ctx = tree_context(tree, src.tree_cache, opts.tree.upstream_repo, opts.tree.prereqs, opts.tree.with_prereqs)

    account: list[Written] = []
    failed: list[tuple[str, SeriesError]] = []
    code = EXIT_OK
    with Backporter(tree, ctx) as bp:
        for bug in bugs:
            for fix in bug.required_fixes:
                got = fetched.by_fix[fix]
                if isinstance(got, Series):
                    got = over_limit(got, limit) or got
                if isinstance(got, PatchcheckError):
                    print(f"patchcheck: error: {bug.id}: {fix.label}: {got}", file=sys.stderr)
                    failed += [(bug.id, got)] if isinstance(got, SeriesError) else []
                    code = max(code, got.exit_code)
                    continue
                account += _fix_steps(bp, bug, fix, got)
    opts.out.mkdir(parents=True, exist_ok=True)
    # files are numbered in one sequence (a .rej keeps its place), [PATCH k/n] among the mails
    total = sum(1 for w in account if w.step.written)
    number = k = 0
    for w in account:
        if w.step.written or w.step.rejects is not None:
            number += 1
            k += w.step.written
            w.name = _write(opts, w, number, k, total)
    for w in account:
        _say(w)
        code = max(code, _code(w.step))
    names = [w.name for w in account if w.step.written and w.name]
    lines = queue_lines(tree, names)
    if lines:
        print("\n".join(lines))
    if not src.quiet:
        print(f"{len(names)} patch{'es' if len(names) != 1 else ''} written to {opts.out}")
    common.show_series_hints(src, failed)
    return code


def _fix_steps(bp: Backporter, bug: Bug, fix: Fix, series: Series) -> list[Written]:
    out = []
    link = series.source in ("lore", "cache") and series.msgid is not None
    for p in series.patches:
        try:
            out += [Written(bug.id, s, link and s.prereq_of is None) for s in bp.steps(p, fix, bug.cves)]
        except PatchcheckError as e:
            from patchcheck.engine.backport import Step
            from patchcheck.model import PatchResult

            r = PatchResult(p.msgid, p.subject, p.upstream, Verdict.ERROR, None, str(e), error=str(e))
            out.append(Written(bug.id, Step(p, r, why=str(e))))
    return out


def _write(opts: BackportOptions, w: Written, number: int, k: int, total: int) -> str:
    from patchcheck.sys.atomic import atomic_write
    from patchcheck.text.mailout import file_name, format_mail

    s = w.step
    if s.adapted is None:
        name = file_name(number, s.patch.subject, ".rej")
        atomic_write(opts.out / name, s.rejects or b"")
        return name
    name = file_name(number, s.patch.subject)
    link = lore_link(opts.sources.lore_url, s.patch.msgid) if w.link else None
    mail = format_mail(
        s.patch,
        s.adapted.diff,
        s.adapted.stat,
        number=k,
        total=total,
        upstream=s.patch.upstream,
        link=link,
        signature=f"patchcheck {__version__}",
    )
    atomic_write(opts.out / name, mail)
    return name


def _say(w: Written) -> None:
    from patchcheck.report._common import label, prereq_lines

    s = w.step
    head = f"{w.bug}: {s.patch.subject}: {label(s.result.verdict, s.result.method)}"
    if s.prereq_of is not None:
        print(f"{head}: wrote {w.name} (a prerequisite of {s.prereq_of!r})")
    elif s.written:
        print(f"{head}: wrote {w.name}")
    elif s.rejects is not None:
        print(f"{head}: nothing written ({s.why}); failed hunks in {w.name}")
    else:
        print(f"{head}: nothing written ({s.why})")
    pre = prereq_lines(s.result)
    if pre:
        print("  prerequisites (upstream, nearest first):")
        print("\n".join(f"    {x}" for x in pre))


def _code(s: Step) -> int:
    if s.written or s.result.verdict in (Verdict.PRESENT, Verdict.NOT_APPLICABLE):
        return EXIT_OK
    if s.result.verdict == Verdict.ERROR:
        return s.result.error_code or EXIT_NO_SERIES
    return EXIT_FINDINGS


# ---- patch queues -----------------------------------------------------------------------


def queue_lines(tree: TreeView, names: list[str]) -> list[str]:
    """What to add to the tree's patch queue for the written patches: debian/patches/series
    lines for a quilt .dsc; PatchNNNN: lines (and %patch lines when the spec applies patches
    one by one) for an SRPM."""
    if not names:
        return []
    if tree.info.kind == "dsc":
        if tree.read("debian/patches/series") is None:
            return []
        return ["add to debian/patches/series (the files go to debian/patches/):", *(f"  {n}" for n in names)]
    if tree.info.kind == "srpm":
        from patchcheck.trees.specprep import preprocess
        from patchcheck.trees.srpm import SrpmTree

        if isinstance(tree, SrpmTree):
            ev = preprocess(tree.spec_text, tree.arch, label=tree.info.name)
            return spec_lines([x.text.strip() for x in ev.section("prep")], list(ev.patches), names)
    return []


def spec_lines(prep: list[str], numbers: list[int], names: list[str]) -> list[str]:
    """PatchNNNN: tags after the spec's highest, then the %prep lines its style needs
    (``prep``: the active lines of %prep, stripped)."""
    first = max(numbers, default=-1) + 1
    nums = list(range(first, first + len(names)))
    out = ["add to the spec's preamble:", *(f"  Patch{n}: {name}" for n, name in zip(nums, names, strict=True))]
    if any(ln.startswith(("%autosetup", "%autopatch")) and " -N" not in f" {ln}" for ln in prep):
        return [*out, "(%autosetup / %autopatch applies them: nothing more to add)"]
    if any(ln.split()[:1] in (["ApplyPatch"], ["ApplyOptionalPatch"]) for ln in prep if ln.split()):
        return [*out, "add to %prep, after the last ApplyPatch:", *(f"  ApplyPatch {name}" for name in names)]
    if any(ln.startswith("%patch") for ln in prep):
        new_style = any(ln.startswith(("%patch -P", "%patch ")) for ln in prep)
        lines = [f"  %patch -P {n} -p1" if new_style else f"  %patch{n} -p1" for n in nums]
        return [*out, "add to %prep, after the last %patch line:", *lines]
    return [*out, "(the spec's %prep applies patches in a way patchcheck does not know: add them as it expects)"]
