"""Benchmark: every real change between two Debian linux-source-6.1 versions, as patch
e-mails served from the local public-inbox server, audited on the full old tree by patchcheck
(cold and warm) and by the shell loop a maintainer would write (git apply --check, then -R),
then as a matrix (all bugs x 4 trees: old, new and two mutated copies) to show the cost per
(bug, tree) cell stays flat as the matrix grows.

    python bench/run.py [--runs 3] [--limit N] [-j N]

Trees, diffs and mails come from tests/integration/realtrees.py (the integration test's own
code), the server from tests/pi_server.py. Prints one table of medians and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # testing/ is not installed: run from a checkout

from bench import mutants  # noqa: E402
from testing.pi_server import PIServer  # noqa: E402
from testing.realtrees import (  # noqa: E402
    DEFAULT_PAIR,
    FileDiff,
    RealPair,
    Unavailable,
    publish,
    real_pair,
    spread,
)
from testing.rig import patchcheck_argv  # noqa: E402

# the targets of issue 14 "Speed" (and the fetch figure of the issue before it)
T_WARM_RATIO = 0.3  # warm audit / shell loop, wall
T_WARM_FLOOR = 0.5  # the floor for the same ratio
T_COLD_RATIO = 3.0  # cold audit (every series fetched) / shell loop
T_JOBS = 1.6  # warm audit: -j 1 wall / -j 2 wall
T_SINGLE = 0.25
T_HELP = 0.1
T_RSS_MB = 150.0
T_LINEAR = 0.10  # matrix ms per cell within this much of the same cells run tree by tree
T_FETCH_100 = 10.0
MATRIX_SIZES = (100, 1000)  # bugs, besides all of them

# the maintainer's loop, verbatim in spirit: one git apply per patch, -R when it fails
BASELINE_SH = r"""
cd "$1"; shift
for p in "$@"; do
  if git apply --check "$p" 2>/dev/null; then echo "fwd $p"
  elif git apply --check -R "$p" 2>/dev/null; then echo "rev $p"
  else echo "none $p"; fi
done
"""


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system of the whole process tree
    rss_mb: float  # the largest process of the tree
    rc: int


def measure(cmd: Sequence[str], out: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run ``cmd`` (stdout to ``out``); wall clock, CPU from RUSAGE_CHILDREN deltas, peak RSS
    from wait4 (Linux: the max over the child and every descendant it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out, "wb") as f, open(out.with_suffix(".err"), "wb") as e:
        p = subprocess.Popen(cmd, stdout=f, stderr=e, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, ru.ru_maxrss / 1024, p.returncode)


@dataclass
class Row:
    name: str
    samples: list[Sample]

    def med(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


class Bench:
    def __init__(self, args: argparse.Namespace, pair: RealPair, diffs: list[FileDiff], work: Path) -> None:
        self.args, self.pair, self.diffs, self.work = args, pair, diffs, work
        self.bugs = work / "bugs"
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        # an installed patchcheck has its .pyc files; without them every start-up recompiles
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.server = PIServer()
        self.by_bug = publish(diffs, self.server, self.bugs)
        self.patch_files: dict[str, Path] = {}
        pdir = work / "patches"
        pdir.mkdir()
        for bid, fd in self.by_bug.items():
            p = pdir / f"{bid}.patch"
            p.write_bytes(fd.diff)
            self.patch_files[bid] = p
        self.trees = [pair.old, pair.new, *mutants.build(work / "mutants", pair, diffs)]

    def pc(self, *args: str, cache: Path, lore: bool = True) -> list[str]:
        return patchcheck_argv(
            *args,
            "-q",
            bugs=self.bugs,
            cache=cache,
            tree_cache=cache / "trees",  # cold means cold for trees too
            lore=self.server.url if lore else None,
            jobs=self.args.jobs,
            offline=not lore,
        )

    def audit(
        self,
        cache: Path,
        out: Path,
        offline: bool,
        trees: Sequence[Path] = (),
        bugs: Sequence[str] = (),
        jobs: int = 0,
    ) -> Sample:
        tree_args = [a for t in (trees or [self.pair.old]) for a in ("--tree", str(t))]
        bug_args = [a for b in bugs for a in ("--bug", b)] or ["--all"]
        cmd = self.pc("audit", *tree_args, *bug_args, "--format", "json", cache=cache, lore=not offline)
        if jobs:
            cmd[cmd.index("-j") + 1] = str(jobs)
        s = measure(cmd, out, self.env)
        if s.rc not in (0, 1):
            raise SystemExit(
                f"patchcheck audit failed (exit {s.rc}): {out.with_suffix('.err').read_text()[-2000:]}"
            )
        return s

    def run(self) -> None:
        runs, w = self.args.runs, self.work
        rows: dict[str, list[Sample]] = {}

        def add(name: str, s: Sample) -> None:
            rows.setdefault(name, []).append(s)

        warm_cache = w / "cache-warm"
        for i in range(runs):
            # cold: an empty cache every time, so every series is fetched
            cache = w / f"cache-cold-{i}"
            add("cold audit (fetch incl.)", self.audit(cache, w / f"cold-{i}.json", offline=False))
            if i == 0:
                shutil.move(cache, warm_cache)
            else:
                shutil.rmtree(cache)
        one = next(iter(self.by_bug))
        first100 = list(self.by_bug)[:100]
        baseline = [
            "bash",
            "-c",
            BASELINE_SH,
            "baseline",
            str(self.pair.old),
            *map(str, self.patch_files.values()),
        ]
        for i in range(runs):
            # side by side in each round, so a busy machine slows all of them alike
            add("warm audit (--offline)", self.audit(warm_cache, w / f"warm-{i}.json", offline=True))
            add("warm audit -j 1", self.audit(warm_cache, w / f"warm-j1-{i}.json", offline=True, jobs=1))
            add("baseline shell loop", measure(baseline, w / f"baseline-{i}.txt", self._git_env()))
            single = self.pc(
                "--tree", str(self.pair.old), "--bug", one, "--format", "json", cache=warm_cache, lore=False
            )
            add("single check (warm)", measure(single, w / f"single-{i}.json", self.env))
            add(
                "patchcheck --help",
                measure([sys.executable, "-m", "patchcheck", "--help"], w / f"help-{i}.txt", self.env),
            )
            cache = w / f"cache-f100-{i}"
            fetch = self.pc("fetch", *[a for b in first100 for a in ("--bug", b)], cache=cache)
            add(f"fetch {len(first100)} series (cold)", measure(fetch, w / f"fetch100-{i}.txt", self.env))
            shutil.rmtree(cache, ignore_errors=True)
            for name, s in self.matrix(warm_cache, i).items():
                add(name, s)
        self.report({k: Row(k, v) for k, v in rows.items()}, len(first100))

    def matrix(self, cache: Path, i: int) -> dict[str, Sample]:
        """The 4-tree matrix for 100, 1,000 and all bugs, and each other tree alone (the old
        tree alone is the warm audit)."""
        out: dict[str, Sample] = {}
        ids = list(self.by_bug)
        for n in [*(m for m in MATRIX_SIZES if m < len(ids)), len(ids)]:
            bugs = ids[:n] if n < len(ids) else []
            out[f"matrix {n} bugs x 4"] = self.audit(
                cache, self.work / f"matrix-{n}-{i}.json", offline=True, trees=self.trees, bugs=bugs
            )
        for t in self.trees[1:]:
            out[f"{t.name} alone"] = self.audit(
                cache, self.work / f"alone-{t.name}-{i}.json", offline=True, trees=[t]
            )
        return out

    def _git_env(self) -> dict[str, str]:
        # a neutral git (no user config); the ceiling keeps git from finding a repository
        # above the extracted tree
        return {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CEILING_DIRECTORIES": str(self.pair.old.parent),
            "LC_ALL": "C",
        }

    def agreement(self) -> tuple[Counter[str], list[str]]:
        """patchcheck (warm run 0) vs the baseline (run 0) where the baseline is unambiguous:
        only forward applies -> backportable; only reverse applies -> present."""
        pc = {r["bug"]: r for r in json.loads((self.work / "warm-0.json").read_text())["results"]}
        name = {str(p): bid for bid, p in self.patch_files.items()}
        counts: Counter[str] = Counter()
        disagree: list[str] = []
        for line in (self.work / "baseline-0.txt").read_text().splitlines():
            how, path = line.split(" ", 1)
            bid = name[path]
            want = {"fwd": "backportable", "rev": "present"}.get(how)
            if want is None:
                counts["baseline ambiguous (neither applies)"] += 1
                continue
            got = pc[bid]["verdict"]
            counts["agree" if got == want else "disagree"] += 1
            if got != want:
                disagree.append(f"{self.by_bug[bid].path}: baseline {how}, patchcheck {got}")
        return counts, disagree

    def matrix_agrees(self) -> int:
        """Cells whose verdict differs between the all-bugs matrix and the trees run alone
        (run 0)."""
        n = len(self.by_bug)

        def cells(name: str) -> dict[tuple[str, str], tuple[str, str | None]]:
            doc = json.loads((self.work / name).read_text())
            return {(r["tree"], r["bug"]): (r["verdict"], r["method"]) for r in doc["results"]}

        alone: dict[tuple[str, str], tuple[str, str | None]] = cells("warm-0.json")
        for t in self.trees[1:]:
            alone |= cells(f"alone-{t.name}-0.json")
        together = cells(f"matrix-{n}-0.json")
        return sum(1 for k, v in together.items() if alone.get(k) != v) + abs(len(together) - len(alone))

    def report(self, rows: dict[str, Row], n100: int) -> None:
        n = len(self.diffs)
        print(
            f"\n{n} real patches ({self.pair.old_version} -> {self.pair.new_version}), "
            f"tree {self.pair.old}, -j {self.args.jobs}, medians of {self.args.runs} runs "
            f"(each round runs every row once, side by side)\n"
        )
        print(f"{'':30}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}{'ms per cell':>13}")
        for name, r in rows.items():
            cells = n * (4 if name.startswith("matrix") else 1)
            if name.startswith("matrix"):
                cells = int(name.split()[1]) * 4
            per = (
                f"{1000 * r.med('wall') / cells:13.2f}"
                if "audit" in name or "base" in name or "matrix" in name or "alone" in name
                else ""
            )
            print(f"{name:30}{r.med('wall'):9.2f}{r.med('cpu'):9.2f}{r.med('rss_mb'):13.1f}{per}")
        med = {k: r.med("wall") for k, r in rows.items()}
        base = med["baseline shell loop"]
        warm, warm1, cold = med["warm audit (--offline)"], med["warm audit -j 1"], med["cold audit (fetch incl.)"]
        ratio, cold_ratio, speedup = warm / base, cold / base, warm1 / warm
        fetch = med[f"fetch {n100} series (cold)"]
        rss = max(r.med("rss_mb") for k, r in rows.items() if k != "baseline shell loop")
        # linear in cells: the all-bugs matrix against the same cells, one tree at a time
        one_tree = 1000 * (warm + sum(med[f"{t.name} alone"] for t in self.trees[1:])) / (4 * n)
        together = 1000 * med[f"matrix {n} bugs x 4"] / (4 * n)
        growth = together / one_tree - 1
        print(
            f"\nwarm / baseline wall: {ratio:.2f}   cold / baseline: {cold_ratio:.2f}   "
            f"-j 1 / -j {self.args.jobs}: {speedup:.2f}\n"
            f"series fetched per second: {n100 / fetch:.1f} (fetch only), {n / cold:.1f} (cold audit)\n"
            f"ms per cell: one tree at a time {one_tree:.2f}, 4-tree matrix {together:.2f} ({growth:+.0%}); "
            + ", ".join(
                f"{k.split()[1]} bugs {1000 * v / (4 * int(k.split()[1])):.2f}"
                for k, v in med.items()
                if k.startswith("matrix")
            )
        )
        counts, disagree = self.agreement()
        print("verdicts vs baseline: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for d in disagree[:20]:
            print("  DISAGREE", d)
        matrix_diff = self.matrix_agrees()
        single, helps = med["single check (warm)"], med["patchcheck --help"]
        targets = [
            (
                f"warm audit <= {T_WARM_RATIO}x baseline",
                ratio <= T_WARM_RATIO,
                f"{ratio:.2f}x"
                + (
                    ""
                    if ratio <= T_WARM_RATIO
                    else f" (floor {T_WARM_FLOOR}x: {'met' if ratio <= T_WARM_FLOOR else 'missed'})"
                ),
            ),
            (f"cold audit <= {T_COLD_RATIO:.0f}x baseline", cold_ratio <= T_COLD_RATIO, f"{cold_ratio:.2f}x"),
            (f"-j {self.args.jobs} >= {T_JOBS}x faster than -j 1", speedup >= T_JOBS, f"{speedup:.2f}x"),
            (f"single warm check <= {T_SINGLE} s", single <= T_SINGLE, f"{single:.2f} s"),
            (f"--help <= {T_HELP} s", helps <= T_HELP, f"{helps:.2f} s"),
            (f"peak RSS <= {T_RSS_MB:.0f} MB", rss <= T_RSS_MB, f"{rss:.0f} MB"),
            (f"matrix ms/cell within {T_LINEAR:.0%} of one tree", growth <= T_LINEAR, f"{growth:+.0%}"),
            (f"cold fetch of {n100} series < {T_FETCH_100:.0f} s", fetch < T_FETCH_100, f"{fetch:.2f} s"),
            ("verdicts agree with the baseline", not counts["disagree"], f"{counts['disagree']} disagree"),
            ("matrix verdicts = trees alone", not matrix_diff, f"{matrix_diff} differ"),
        ]
        print("\ntargets:")
        for what, ok, got in targets:
            print(f"  {'PASS' if ok else 'FAIL'}  {what:44} {got}")
        if self.args.trace:
            self.trace_reads()

    def trace_reads(self) -> None:
        """strace a warm audit: every file opened under the tree must be one a patch
        touches (or the top Makefile, read for the version)."""
        if shutil.which("strace") is None:
            print("reads: strace not installed, not checked")
            return
        log = self.work / "strace.log"
        cmd = [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,openat2",
            "-o",
            str(log),
            *self.pc(
                "audit",
                "--tree",
                str(self.pair.old),
                "--all",
                "--format",
                "json",
                cache=self.work / "cache-warm",
                lore=False,
            ),
        ]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env, check=False)
        root = str(self.pair.old) + "/"
        allowed = {fd.path for fd in self.diffs} | {"Makefile"}
        opened: set[str] = set()
        for line in log.read_text(errors="replace").splitlines():
            if root in line and "ENOENT" not in line:
                opened.add(line.split(root, 1)[1].split('"', 1)[0])
        extra = sorted(p for p in opened if p and p not in allowed)
        print(
            f"reads: {len(opened)} tree paths opened, {len(extra)} not touched by any patch"
            + (f": {', '.join(extra[:10])}" if extra else "")
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement; medians (3)")
    ap.add_argument("--limit", type=int, help="use only N patches (spread over the tree)")
    ap.add_argument(
        "-j", "--jobs", type=int, default=os.cpu_count() or 1, help="patchcheck --jobs (default: number of CPUs)"
    )
    ap.add_argument(
        "--versions",
        nargs=2,
        default=DEFAULT_PAIR,
        metavar=("OLD", "NEW"),
        help=f"Debian linux-source-6.1 versions (default {' '.join(DEFAULT_PAIR)})",
    )
    ap.add_argument(
        "--trace", action="store_true", help="also strace a warm audit to prove it opens only touched files"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    t0 = time.perf_counter()
    try:
        pair = real_pair(*args.versions)
    except Unavailable as e:
        print(f"bench: real trees unavailable: {e}", file=sys.stderr)
        return 2
    diffs = spread(pair.diffs, args.limit) if args.limit else pair.diffs
    print(
        f"trees and {len(pair.diffs)} diffs ready in {time.perf_counter() - t0:.1f} s "
        f"(cached under {pair.old.parent})"
    )
    work = Path(tempfile.mkdtemp(prefix="patchcheck-bench-"))
    bench = Bench(args, pair, diffs, work)
    try:
        bench.run()
    finally:
        bench.server.stop()
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
