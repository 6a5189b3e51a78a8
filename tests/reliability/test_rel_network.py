"""Bad network: every failure of the archive is exit 3, the failing bug's verdict is
``error`` naming the URL (or msgid) and the reason, the other bug of the run still gets its
verdict, and nothing waits longer than ``--timeout``."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from patchcheck.cliargs import build_parser
from testing.rig import LOCAL, Rig, no_traceback

# fault -> words of the error (besides the URL)
FAULTS: dict[str, tuple[str, ...]] = {
    "404": ("not found", "HTTP 404"),
    "500": ("HTTP 500",),
    "refused": ("connection refused",),
    "hang": ("no complete answer within 2s", "timed out"),
    "drip": ("no complete answer within 2s", "timed out"),
    "redirect-loop": ("redirect loop",),
    "html200": ("HTML page", "HTTP 200"),
    "corrupt-gzip": ("corrupt gzip",),
}
# the archive did not answer: a hint names the cache, a mirror and a local mbox
UNREACHABLE = {"500", "refused", "hang", "drip", "html200"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_exit_3_and_others_still_judged(rig: Rig, fault: str) -> None:
    lore, bug, mid = None, "b-good", "good-1@example.org"
    if fault == "404":
        bug, mid = "x", "nowhere-1@example.org"
        rig.fix_bug(bug, mid)
    elif fault == "refused":
        lore = rig.server.url
        rig.server.stop()
    else:
        rig.server.fault = fault
        rig.server.fault_seconds = 20  # far longer than --timeout
    t0 = time.monotonic()
    cp, res = rig.check(bug, LOCAL, lore=lore, timeout=2)
    took = time.monotonic() - t0
    assert took < 8, f"{fault}: {took:.1f}s with --timeout 2"
    assert cp.returncode == 3, (cp.returncode, cp.stderr)
    # the error cell is summarised on stderr in one line (issue 11 item 9), then the hints
    errors = [ln for ln in cp.stderr.splitlines() if not ln.startswith("hint:")]
    assert len(errors) == 1 and bug in errors[0], cp.stderr
    said = [ln for ln in cp.stderr.splitlines() if ln.startswith("hint:")]
    if fault in UNREACHABLE:
        [hint] = said
        for w in (f"fetch --bug {bug} ", "--offline", "--lore-url", "mbox ="):
            assert w in hint, (w, hint)
    else:
        assert said == []
    err = res[bug]["error"]
    assert res[bug]["verdict"] == "error" and "\n" not in err
    url = f"{lore or rig.server.url}/all/{mid.replace('@', '%40')}/t.mbox.gz"
    assert url in err, err
    for w in FAULTS[fault]:
        assert w in err, (w, err)
    assert (res[LOCAL]["verdict"], res[LOCAL]["method"]) == ("backportable", "clean")
    # nothing half-fetched was kept
    series = rig.cache / "series"
    assert not series.exists() or not any(series.iterdir())


def test_fault_in_every_format(rig: Rig) -> None:
    """The error reaches every report format, and -o writes it the same."""
    rig.server.fault = "500"
    for fmt in ("table", "markdown", "html", "junit"):
        cp = rig.run(
            "check",
            "--tree",
            str(rig.tree),
            "--bug",
            "b-good",
            "--bug",
            LOCAL,
            "--format",
            fmt,
            "-o",
            str(rig.root / f"r.{fmt}"),
        )
        no_traceback(cp)
        assert cp.returncode == 3 and cp.stdout == ""
        errors = [ln for ln in cp.stderr.splitlines() if not ln.startswith("hint:")]
        assert len(errors) == 1 and "b-good" in errors[0], cp.stderr
        assert len([ln for ln in cp.stderr.splitlines() if ln.startswith("hint:")]) == 1, cp.stderr
        text = (rig.root / f"r.{fmt}").read_text()
        assert "HTTP 500" in text and LOCAL in text


def test_audit_with_a_fault(rig: Rig) -> None:
    rig.server.fault = "redirect-loop"
    cp = rig.run("audit", "--tree", str(rig.tree), "--tree", str(rig.tree), "--all", "--format", "json", timeout=2)
    no_traceback(cp)
    assert cp.returncode == 3
    got = {(r["bug"], r["verdict"]) for r in json.loads(cp.stdout)["results"]}
    assert got == {("b-good", "error"), (LOCAL, "backportable")}
    # the matrix table has no room for reasons: each error follows it in full
    twin = shutil.copytree(rig.tree, rig.root / "linux-twin")
    cp = rig.run("audit", "--tree", str(rig.tree), "--tree", str(twin), "--all", timeout=2)
    assert cp.returncode == 3 and "linux-twin" in cp.stdout
    url = f"{rig.server.url}/all/good-1%40example.org/t.mbox.gz"
    assert f"error: b-good: {url}: too many redirects (redirect loop)" in cp.stdout.splitlines()


def test_fetch_verb_with_a_dead_server(rig: Rig) -> None:
    url = rig.server.url
    rig.server.stop()
    cp = rig.run("fetch", "--all", lore=url)
    no_traceback(cp)
    assert cp.returncode == 3
    assert (
        f"b-good: good-1@example.org: error: {url}/all/good-1%40example.org/t.mbox.gz: "
        "cannot connect (connection refused)" in cp.stdout.splitlines()
    )


def test_offline_and_not_cached(rig: Rig) -> None:
    cp, res = rig.check("b-good", LOCAL, offline=True)
    assert cp.returncode == 3
    assert "good-1@example.org: not in cache (offline)" in res["b-good"]["error"]
    assert res[LOCAL]["verdict"] == "backportable"
    assert rig.server.requests == []


def test_default_timeout_is_30s() -> None:
    args = build_parser().parse_args(["check", "--tree", "t", "--bug", "b"])
    assert args.timeout == 30.0
