"""series.conf files and the ApplyPatch helpers of openEuler-family kernel specs."""

from __future__ import annotations

import pytest

from patchcheck.trees.kernelqueue import (
    ApplyStep,
    is_placeholder,
    parse_series_conf,
    prep_steps,
    resolve_member,
    series_symbols,
)
from patchcheck.trees.specprep import preprocess

SERIES = """\
# openEuler kernel patches, applied in order
patches/0001-nfsd-check-clp.patch

   # an indented comment
patches/0002-nfsd-add-callback-wq.patch   # trailing words after a comment mark
patches/0003-revert-something.patch -R
patches/0004-p0-style.patch -p0
"""


def test_series_conf_order_comments_options() -> None:
    s = parse_series_conf(SERIES)
    assert [(e.name, e.line, e.strip, e.reverse) for e in s.entries] == [
        ("patches/0001-nfsd-check-clp.patch", 2, 1, False),
        ("patches/0002-nfsd-add-callback-wq.patch", 5, 1, False),
        ("patches/0003-revert-something.patch", 6, 1, True),
        ("patches/0004-p0-style.patch", 7, 0, False),
    ]
    assert s.skipped == () and s.notes == ()


def test_guards_select_by_symbols() -> None:
    text = "+arm64 a.patch\n-arm64 b.patch\n+x86 +arm64 c.patch\n- d.patch\n+!arm64 e.patch\nf.patch\n"
    arm = parse_series_conf(text, series_symbols("aarch64"))
    x86 = parse_series_conf(text, series_symbols("x86_64"))
    assert [e.name for e in arm.entries] == ["a.patch", "c.patch", "f.patch"]
    assert [e.name for e in x86.entries] == ["b.patch", "c.patch", "e.patch", "f.patch"]
    assert [e.name for e in x86.skipped] == ["a.patch", "d.patch"]


def test_series_conf_oddities_are_noted() -> None:
    s = parse_series_conf("+arm64\nx.patch --fuzz=3\n", label="series.conf")
    assert [e.name for e in s.entries] == ["x.patch"]
    assert s.notes == (
        "series.conf: line 1: no patch name in '+arm64'; skipped",
        "series.conf: line 2: unknown option '--fuzz=3' after x.patch; ignored",
    )


def test_series_symbols() -> None:
    assert series_symbols("aarch64") == {"aarch64", "arm64"}
    assert series_symbols("x86_64") == {"x86_64", "x86"}


def test_resolve_member() -> None:
    members = {"patches/0001-a.patch", "top/patches/0002-b.patch", "x/0003-c.patch", "y/0003-c.patch"}
    assert resolve_member("patches/0001-a.patch", members) == "patches/0001-a.patch"
    assert resolve_member("./patches/0001-a.patch", members) == "patches/0001-a.patch"
    assert resolve_member("patches/0002-b.patch", members) == "top/patches/0002-b.patch"
    assert resolve_member("0001-a.patch", members) == "patches/0001-a.patch"
    assert resolve_member("0003-c.patch", members) is None  # two candidates: not guessed
    assert resolve_member("missing.patch", members) is None


def test_placeholder_rule() -> None:
    assert is_placeholder(b"")
    assert is_placeholder(b"line\n" * 9)
    assert not is_placeholder(b"line\n" * 10)


SPEC = """\
Name: kernel
Version: 4.19.90
Release: 1
Patch1001: 1001-common.patch
Patch1002: 1002-x86.patch
%global series_file series.conf
%description
x
%prep
ApplyPatch()
{
  local patch=$1
  shift
  ApplyPatch_inside_body $patch
}
ApplyOptionalPatch() { ApplyPatch "$1"; }
Applypatches()
{
    set -e
    sed -i '/^#/d' $1
}
Applypatches %{series_file} %{_builddir}/linux
ApplyPatch %{PATCH1001}
%ifarch x86_64
ApplyPatch 1002-x86.patch -R || exit 1
%endif
ApplyOptionalPatch linux-kernel-test.patch
%if "%(uname -r)" == "x"
ApplyPatch maybe.patch
%endif
ApplyPatch %(echo generated.patch)
%build
ApplyPatch not-in-prep.patch
"""


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_prep_steps_for_an_arch(arch: str) -> None:
    ev = preprocess(SPEC, arch, label="kernel.spec")
    q = prep_steps(ev, label="kernel.spec")
    expected = [
        ApplyStep("series", "series.conf", 22, args=("?/linux",)),
        ApplyStep("patch", "1001-common.patch", 23),
    ]
    if arch == "x86_64":
        expected.append(ApplyStep("patch", "1002-x86.patch", 25, reverse=True, args=("-R",)))
    expected += [
        ApplyStep("optional", "linux-kernel-test.patch", 27),
        ApplyStep("patch", "maybe.patch", 29, certain=False),
    ]
    assert list(q.steps) == expected
    assert q.notes == ("kernel.spec: line 31: ApplyPatch names a file only rpm could compute; skipped",)
