"""Report renderers: every format checked for content against the same fixture grid."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from patchcheck.errors import BadInput
from patchcheck.model import Verdict
from patchcheck.report import FORMATS, render
from patchcheck.report._common import short_detail
from patchcheck.report.model import Report
from testing.report_fixtures import (
    EXPECTED,
    GENERATED,
    TREES,
    VERSION,
    make_bug,
    make_result,
    sample_report,
)

BUG_IDS = list(dict.fromkeys(b for b, _t in EXPECTED))
TREE_NAMES = [t.name for t in TREES]


def expected_counts(tree: str | None = None) -> Counter[str]:
    return Counter(v for (_b, t), (v, _m) in EXPECTED.items() if tree is None or t == tree)


def test_fixture_covers_every_verdict() -> None:
    assert set(expected_counts()) == set(tuple(Verdict))
    assert len(BUG_IDS) >= 5 and len(TREES) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_text(fmt: str) -> None:
    out = render(sample_report(), fmt)
    assert isinstance(out, str) and out.endswith("\n")
    assert "nfsd-callback-wq" in out


def test_unknown_format_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown report format 'yaml'"):
        render(sample_report(), "yaml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_report_renders(fmt: str) -> None:
    out = render(Report([], [], [], VERSION, GENERATED), fmt)
    assert isinstance(out, str)


# ---- JSON -----------------------------------------------------------------------------

_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))


def _check(obj: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    assert isinstance(obj, dict), where
    for key, types in spec.items():
        assert key in obj, f"{where}: missing {key!r}"
        val = obj[key]
        assert isinstance(val, types), f"{where}.{key}: {type(val).__name__} not {types}"
        # bool is an int in Python; the schema's numbers never are booleans
        assert not isinstance(val, bool), f"{where}.{key}: boolean"


def validate_interface_schema(doc: Any) -> None:
    """docs/interface.md's JSON report schema: required keys and their types at each level."""
    assert isinstance(doc, dict)
    _check(doc, {"patchcheck": str, "results": list}, "$")
    for i, r in enumerate(doc["results"]):
        w = f"results[{i}]"
        _check(
            r, {"bug": str, "tree": str, "verdict": str, "method": _OPT_STR, "error": _OPT_STR, "patches": list}, w
        )
        assert r["verdict"] in tuple(Verdict), w
        for j, p in enumerate(r["patches"]):
            pw = f"{w}.patches[{j}]"
            _check(
                p,
                {
                    "msgid": str,
                    "subject": str,
                    "upstream": _OPT_STR,
                    "verdict": str,
                    "method": _OPT_STR,
                    "evidence": str,
                    "hunks": list,
                },
                pw,
            )
            for k, h in enumerate(p["hunks"]):
                _check(
                    h,
                    {"file": str, "status": str, "offset": int, "fuzz": int, "line": _OPT_INT, "reason": _OPT_STR},
                    f"{pw}.hunks[{k}]",
                )
                assert h["status"] in ("clean", "offset", "fuzz", "present", "failed", "missing-file")


def test_json_matches_interface_schema_and_round_trips() -> None:
    report = sample_report()
    doc = json.loads(render(report, "json"))
    validate_interface_schema(doc)
    assert doc["patchcheck"] == VERSION
    assert len(doc["results"]) == len(report.results)
    # run order and every value survive the trip
    for res, got in zip(report.results, doc["results"], strict=True):
        assert (got["bug"], got["tree"]) == (res.bug.id, res.tree.name)
        assert (got["verdict"], got["method"], got["error"]) == (res.verdict, res.method, res.error)
        assert EXPECTED[(got["bug"], got["tree"])] == (got["verdict"], got["method"])
        assert len(got["patches"]) == len(res.patches)
        for p, gp in zip(res.patches, got["patches"], strict=True):
            assert (
                gp["msgid"],
                gp["subject"],
                gp["upstream"],
                gp["verdict"],
                gp["method"],
                gp["evidence"],
                gp["optional"],
                gp["note"],
            ) == (p.msgid, p.subject, p.upstream, p.verdict, p.method, p.evidence, p.optional, p.note)
            for h, gh in zip(p.hunks, gp["hunks"], strict=True):
                assert (
                    gh["file"],
                    gh["status"],
                    gh["offset"],
                    gh["fuzz"],
                    gh["line"],
                    gh["reason"],
                    gh["index"],
                    gh["near"],
                ) == (h.file, h.status, h.offset, h.fuzz, h.line, h.reason, h.index, h.near)


def test_json_added_keys() -> None:
    doc = json.loads(render(sample_report(), "json"))
    first = doc["results"][0]
    assert first["tree_info"]["kind"] == "git" and first["tree_info"]["version"] == "4.19.90"
    assert first["severity"] == "critical" and first["cves"] == ["CVE-2024-50264"]
    assert doc["summary"] == dict(expected_counts())
    assert [t["name"] for t in doc["trees"]] == TREE_NAMES
    assert any(p["optional"] for r in doc["results"] for p in r["patches"])


# ---- Markdown -------------------------------------------------------------------------

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def md_summary_rows(text: str) -> tuple[list[str], list[list[str]]]:
    section = text.split("## Summary", 1)[1].split("\n\n", 2)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in _UNESCAPED_PIPE.split(ln)[1:-1]] for ln in lines]
    return split[0], split[2:]


def test_markdown_matrix_cells() -> None:
    text = render(sample_report(), "markdown")
    header, rows = md_summary_rows(text)
    assert header == ["Bug", "Severity", "Title", *TREE_NAMES]
    assert [r[0].strip("`") for r in rows] == BUG_IDS
    for row in rows:
        assert len(row) == len(header), row  # an unescaped '|' would add a cell
        bug = row[0].strip("`")
        for name, got in zip(TREE_NAMES, row[3:], strict=True):
            verdict, method = EXPECTED[(bug, name)]
            assert got == (f"{verdict} ({method})" if method else verdict)


def test_markdown_escapes_pipes_and_markup() -> None:
    text = render(sample_report(), "markdown")
    assert r"callback workqueue \| NULL deref" in text
    assert r"\<script\>" in text and "<script>" not in text
    assert "(javascript:alert(1))" not in text and "<javascript:" not in text


def test_markdown_details_only_for_findings() -> None:
    text = render(sample_report(), "markdown")
    details = text.split("## Details", 1)[1]
    sections = dict(re.findall(r"^### `([^`]+)`.*?\n(.*?)(?=^### |\Z)", details, re.M | re.S))
    for bug in BUG_IDS:
        shown = set(re.findall(r"^#### (\S+):", sections.get(bug, ""), re.M))
        want = {t for t in TREE_NAMES if EXPECTED[(bug, t)][0] not in (Verdict.PRESENT, Verdict.NOT_APPLICABLE)}
        assert shown == want, bug
    assert "```diff\n    --- fix expects" in details
    # a near diff containing ``` is fenced with a longer fence, so it cannot close early
    assert "````diff\n    @@ -10,2 +10,2 @@\n    -\t/* ``` not a fence" in details
    assert "context does not match \\| near line 1240" in details


# ---- JUnit ----------------------------------------------------------------------------


def test_junit_suites_and_counts() -> None:
    root = ET.fromstring(render(sample_report(), "junit"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == TREE_NAMES
    totals = Counter[str]()
    for s in suites:
        name = s.get("name") or ""
        want = expected_counts(name)
        counts = {
            "tests": sum(want.values()),
            "failures": want[Verdict.BACKPORTABLE] + want[Verdict.CONFLICTING] + want[Verdict.PARTIAL],
            "errors": want[Verdict.ERROR],
            "skipped": want[Verdict.NOT_APPLICABLE],
        }
        for k, n in counts.items():
            assert s.get(k) == str(n), (name, k)
            totals[k] += n
        cases = s.findall("testcase")
        assert [c.get("name") for c in cases] == BUG_IDS
        # the attributes agree with what the elements say
        assert len(cases) == counts["tests"]
        assert len(s.findall("testcase/failure")) == counts["failures"]
        assert len(s.findall("testcase/error")) == counts["errors"]
        assert len(s.findall("testcase/skipped")) == counts["skipped"]
        for c in cases:
            assert c.get("classname") == f"patchcheck.{name}"
            verdict, _m = EXPECTED[(c.get("name") or "", name)]
            fail, err, skip = c.find("failure"), c.find("error"), c.find("skipped")
            if verdict in (Verdict.BACKPORTABLE, Verdict.CONFLICTING, Verdict.PARTIAL):
                assert fail is not None and fail.get("type") == verdict
            elif verdict == Verdict.NOT_APPLICABLE:
                assert skip is not None and skip.get("message") == "not-applicable"
            elif verdict == Verdict.ERROR:
                assert err is not None and "not in cache" in (err.get("message") or "")
            else:
                assert fail is None and err is None and skip is None
    for k, n in totals.items():
        assert root.get(k) == str(n)


def test_junit_failure_text_has_failed_hunks() -> None:
    root = ET.fromstring(render(sample_report(), "junit"))
    case = root.find("testsuite[@name='ky10']/testcase[@name='nfsd-callback-wq']")
    assert case is not None
    fail = case.find("failure")
    assert fail is not None and fail.text is not None
    assert "fs/nfsd/nfs4state.c:1236 context does not match" in fail.text
    assert "+\tlist_del_init(&clp->cl_lru);" in fail.text
    assert "conflicting by inspection for patch 1" in fail.text


def test_junit_drops_xml_illegal_characters() -> None:
    bug = make_bug("ctl-chars", title="bad \x01 title \x1b[31m")
    r = make_result(bug, TREES[0], Verdict.CONFLICTING, None)
    r.patches[0].evidence = "evidence with \x00 NUL"
    out = render(Report([r], [TREES[0]], [bug], VERSION, GENERATED), "junit")
    ET.fromstring(out)  # would raise on an illegal character
    assert "\x00" not in out and "\x1b" not in out


# ---- table ----------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_table_several_trees() -> None:
    out = render(sample_report(), "table")
    assert not _ANSI.search(out)
    for t in TREES:
        assert f"tree {t.name}: {t.kind}, version {t.version}" in out
    lines = out.splitlines()
    for bug in BUG_IDS:
        row = next(ln for ln in lines if ln.startswith(bug + " "))
        cells = [f"{v} ({m})" if m else v for v, m in (EXPECTED[(bug, t)] for t in TREE_NAMES)]
        # the cells appear in tree order on the bug's row
        assert re.search(r"\s+".join(re.escape(c) for c in cells), row), row
    summary = next(ln for ln in lines if ln.startswith("summary: "))
    for verdict, n in expected_counts().items():
        assert f"{n} {verdict}" in summary


def test_table_one_tree_has_detail_column() -> None:
    report = sample_report([TREES[2]])
    out = render(report, "table")
    header = next(ln for ln in out.splitlines() if ln.startswith("bug "))
    assert header.split() == ["bug", "severity", "verdict", "method", "detail"]
    assert "Debian 12 6.1.115-1" in out
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln.split()[:1] != []}
    assert "series not in cache" in rows["ext4-extent-oob"]  # error -> its reason
    assert "fs/nfsd/nfs4state.c:1236 context does not match" in rows["vendor-escape"]
    assert "present by exact" in rows["nfsd-callback-wq"]  # evidence
    assert rows["xfs-log-hang"].split()[2:4] == ["backportable", "offset"]


def test_table_color_only_on_request() -> None:
    plain = render(sample_report(), "table", color=False)
    colored = render(sample_report(), "table", color=True)
    assert "\x1b" not in plain
    assert "\x1b[32mpresent (exact)\x1b[0m" in colored
    assert "\x1b[33mbackportable (clean)\x1b[0m" in colored
    assert "\x1b[31mconflicting\x1b[0m" in colored
    assert "\x1b[31mpartially-present\x1b[0m" in colored
    assert "\x1b[35merror\x1b[0m" in colored
    assert _ANSI.sub("", colored).split() == plain.split()


def test_table_strips_terminal_escapes_from_data() -> None:
    bug = make_bug("ctl-chars")
    r = make_result(bug, TREES[0], Verdict.ERROR, None)
    r.error = "boom \x1b[2J cleared"
    out = render(Report([r], [TREES[0]], [bug], VERSION, GENERATED), "table")
    assert "\x1b" not in out and "boom [2J cleared" in out


# ---- HTML -----------------------------------------------------------------------------


class _MatrixParser(HTMLParser):
    """Collects the verdict cell classes of table#matrix, and ids/classes page-wide."""

    def __init__(self) -> None:
        super().__init__()
        self.in_matrix = False
        self.in_body = False
        self.rows: list[list[str]] = []
        self.ids: list[str] = []
        self.classes: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if a.get("id"):
            self.ids.append(a["id"] or "")
        for c in (a.get("class") or "").split():
            self.classes[c] += 1
        if a.get("href") is not None:
            self.hrefs.append(a["href"] or "")
        if tag == "table" and a.get("id") == "matrix":
            self.in_matrix = True
        elif self.in_matrix and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td" and "verdict" in (a.get("class") or "").split():
            self.rows[-1].append(a.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.in_matrix:
            self.in_matrix = self.in_body = False


def test_html_matrix_cells_and_structure() -> None:
    text = render(sample_report(), "html")
    p = _MatrixParser()
    p.feed(text)
    assert len(p.rows) == len(BUG_IDS)
    for bug, row in zip(BUG_IDS, p.rows, strict=True):
        want = [f"verdict v-{EXPECTED[(bug, t)][0]}" for t in TREE_NAMES]
        assert row == want, bug
    for bug in BUG_IDS:
        assert f"bug-{bug}" in p.ids
    assert len(p.ids) == len(set(p.ids)), "duplicate ids"
    # every in-page link lands on an id
    assert all(h[1:] in p.ids for h in p.hrefs if h.startswith("#"))
    failed = sum(1 for (_b, _t), (v, _m) in EXPECTED.items() if v in (Verdict.CONFLICTING, Verdict.PARTIAL))
    # + the optional conflicting patches of the two bugs with an optional fix
    assert p.classes["failed-hunk"] >= failed
    assert p.classes["optional"] > 0
    for cls in ("sev-critical", "sev-high", "sev-medium", "sev-low"):
        assert p.classes[cls] > 0


def test_html_is_self_contained_and_escaped() -> None:
    text = render(sample_report(), "html")
    assert text.startswith("<!DOCTYPE html>")
    assert "@media print" in text and "<style>" in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"\ssrc=", text) and "url(" not in text and "@import" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert 'href="javascript:' not in text and "javascript:alert(1)" in text
    assert 'href="https://www.cve.org/CVERecord?id=CVE-2024-50264"' in text
    assert 'href="https://lore.kernel.org/all/x@y/"' in text
    assert f'<time datetime="{GENERATED}">' in text
    assert "Kylin V10" in text and "applied 1234 spec patches" in text
    assert '<span class="del">-\tlist_del(&amp;clp-&gt;cl_lru);</span>' in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_html_in_headless_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium not installed (Debian package: chromium)")
    page = tmp_path / "report.html"
    page.write_text(render(sample_report(), "html"), encoding="utf-8")
    url = page.as_uri()

    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    p = _MatrixParser()
    p.feed(dom.stdout)
    assert "matrix" in p.ids and len(p.rows) == len(BUG_IDS)
    assert p.rows[0] == [f"verdict v-{EXPECTED[('nfsd-callback-wq', t)][0]}" for t in TREE_NAMES]
    assert p.classes["failed-hunk"] > 0
    assert "bug-nfsd-callback-wq" in p.ids

    shot = tmp_path / "report.png"
    res = _run_chromium(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1280,1600",
        "--hide-scrollbars",
        url,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # IHDR: width and height as big-endian 32-bit ints
    size = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
    assert size == (1280, 1600)
    assert len(data) > 20_000  # a blank page compresses to a few kB
    with contextlib.suppress(OSError):  # a copy for a human to look at; not the test
        shutil.copyfile(shot, "/tmp/patchcheck-report.png")


@pytest.mark.parametrize("fmt", FORMATS)
def test_json_report_reads_back_to_the_same_report(tmp_path: Path, fmt: str) -> None:
    """What merge relies on: a JSON report holds all that every format shows."""
    from patchcheck.report.json_load import load_report

    report = sample_report()
    path = tmp_path / "r.json"
    path.write_text(render(report, "json"))
    again = load_report(path)
    assert render(again, fmt) == render(report, fmt)
    assert render(again, fmt, color=True, verbose=True) == render(report, fmt, color=True, verbose=True)


# ---- the terminal table: width, optional fixes, -v, plurals ------------------------------


def _table_part(out: str) -> list[str]:
    """The lines up to the summary (the error list and -v details may hold long paths)."""
    lines = out.splitlines()
    return lines[: next(i for i, ln in enumerate(lines) if ln.startswith("summary: "))]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("width", [80, 100, 140])
@pytest.mark.parametrize("ntrees", [1, 3])
def test_table_fits_the_width_and_cuts_nothing(width: int, ntrees: int) -> None:
    report = sample_report(TREES[:ntrees] if ntrees > 1 else [TREES[2]])
    out = render(report, "table", width=width)
    summary_at = len(_table_part(out))
    assert all(len(ln) <= width for ln in out.splitlines()[: summary_at + 3]), out
    # nothing is cut: every bug, and in one tree each cell's whole detail, is there
    for bug in BUG_IDS:
        assert bug in _squeeze(out)
    if ntrees == 1:
        for r in report.results:
            assert _squeeze(short_detail(r, None)) in _squeeze(out), r.bug.id
        assert "…" not in "\n".join(_table_part(out))
    else:
        # every bug row, in every block of columns, has its verdicts in tree order
        seen: set[tuple[str, str]] = set()
        trees = TREE_NAMES
        for ln in _table_part(out):
            if ln.startswith("bug "):
                nums = re.findall(r"\[(\d)\]", ln)
                trees = [TREE_NAMES[int(n) - 1] for n in nums] if nums else TREE_NAMES
            elif ln.split()[:1] and ln.split()[0] in BUG_IDS:
                bug = ln.split()[0]
                assert re.findall(_VERDICT_WORD, ln) == [EXPECTED[(bug, t)][0] for t in trees], ln
                seen |= {(bug, t) for t in trees}
        assert seen == set(EXPECTED)


_VERDICT_WORD = r"\b(?:partially-present|not-applicable|backportable|conflicting|present|error)\b"


def test_table_narrow_matrix_numbers_its_columns() -> None:
    wide = render(sample_report(), "table", width=200)
    narrow = render(sample_report(), "table", width=80)
    assert "[1]" not in wide and "tree linux-4.19:" in wide
    for i, t in enumerate(TREES, 1):
        assert f"tree [{i}] {t.name}:" in narrow
    assert narrow.count("bug ") >= 2  # the trees split into side-by-side blocks


def test_table_shows_optional_fixes() -> None:
    out = render(sample_report([TREES[2]]), "table", width=200)
    rows = [ln for ln in out.splitlines() if ln.startswith("+ optional")]
    assert rows and all("conflicting" in r for r in rows)
    assert any("hardening follow-up" in r for r in rows)
    # the bug's own verdict is not swayed: nfsd-callback-wq stays present (exact)
    row = next(ln for ln in out.splitlines() if ln.startswith("nfsd-callback-wq "))
    assert row.split()[2:4] == ["present", "exact"]


def test_table_verbose_shows_each_failing_hunk() -> None:
    plain = render(sample_report(), "table", width=120)
    verbose = render(sample_report(), "table", width=120, verbose=True)
    assert "hunk #" not in plain and "list_del_init" not in plain
    assert "failed hunk #2 at fs/nfsd/nfs4state.c:1236: context does not match" in verbose
    assert "      -\tlist_del(&clp->cl_lru);" in verbose and "      +\tlist_del_init(&clp->cl_lru);" in verbose
    assert "ext4-extent-oob on linux-4.19: conflicting" in verbose
    colored = render(sample_report(), "table", width=120, verbose=True, color=True)
    assert "\x1b[31m-\tlist_del(&clp->cl_lru);\x1b[0m" in colored


def test_table_counts_have_plurals() -> None:
    bug = make_bug("one-bug")
    r = make_result(bug, TREES[0], Verdict.ERROR, None)
    out = render(Report([r], [TREES[0]], [bug], VERSION, GENERATED), "table")
    assert "summary: 1 bug × 1 tree: 1 error" in out
    out = render(sample_report(), "table")
    assert "summary: 6 bugs × 3 trees:" in out and "2 errors" in out and "4 present" in out


def test_table_verbose_words_wrap_to_the_width() -> None:
    """-v at 80 columns: its prose lines (patch, hunk place and reason) fit; the near-match
    diff lines are code and keep their length (nothing is cut)."""
    out = render(sample_report(), "table", width=80, verbose=True)
    details = out.split("summary:", 1)[1].split("\nerror: ", 1)[0].splitlines()
    prose = [ln for ln in details if not ln.startswith("      ") or ln.startswith("        ")]
    assert prose and all(len(ln) <= 80 for ln in prose), [ln for ln in prose if len(ln) > 80]
    joined = " ".join(ln.strip() for ln in details)
    assert "failed hunk #2 at fs/nfsd/nfs4state.c:1236: context does not match" in joined
