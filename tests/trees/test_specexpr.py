"""The spec conditional evaluator: macros, expressions, %if blocks, and hostile specs."""

from __future__ import annotations

import resource
import time

import pytest

from patchcheck.trees.specexpr import UNKNOWN, Expander, Macros, builtin_macros, evaluate, expand, normalize_arch
from patchcheck.trees.specprep import SpecError, logical_lines, preprocess


def kept(spec: str, arch: str = "x86_64", macros: dict[str, str] | None = None) -> list[str]:
    """The active non-section lines, marked '?' when uncertain."""
    ev = preprocess(spec, arch, macros)
    return [x.text.strip() + ("" if x.certain else " ?") for x in ev.lines]


def ex(text: str, **macros: str) -> str | None:
    return expand(text, Macros(macros))


# ---- macro expansion ----------------------------------------------------------------------


def test_plain_and_braced_macros() -> None:
    assert ex("%{name}-%version.tar", name="kernel", version="4.19.90") == "kernel-4.19.90.tar"
    assert ex("100%%") == "100%"
    assert ex("%{a}", a="%{b}x", b="y") == "yx"  # bodies expand recursively


def test_conditional_forms() -> None:
    assert ex("0%{?x}", x="1") == "01"
    assert ex("0%{?x}") == "0"
    assert ex("%{?x:yes}", x="1") == "yes"
    assert ex("%{?x:yes}") == ""
    assert ex("%{!?x:no}") == "no"
    assert ex("%{!?x:no}", x="1") == ""
    assert ex("%{?!x:no}") == "no"
    assert ex("%{!?x}") == ""
    assert ex("a%?dist", dist=".ky10") == "a.ky10"


def test_with_without_defined() -> None:
    assert ex("%{with foo}", _with_foo="--with-foo") == "1"
    assert ex("%{with foo}") == "0"
    assert ex("%{without foo}", _without_foo="--without-foo") == "1"
    assert ex("%{defined x}", x="") == "1"
    assert ex("%{undefined x}") == "1"


def test_builtins() -> None:
    assert ex("%{expand:%%{x}}", x="1") == "1"
    assert ex("%{basename:/a/b.patch}") == "b.patch"
    assert ex("%{upper:ky10}") == "KY10"
    assert ex("%[1 + 2 * 3]") == "7"
    assert ex("%{S:1}", SOURCE1="config") == "config"


def test_what_is_never_run_is_unknown() -> None:
    assert ex("%(uname -r)") is None
    assert ex("%{lua: print(1)}") is None
    assert ex("%{getenv:HOME}") is None
    assert ex("%{undefined_macro}") is None
    m = Macros()
    m.define("ApplyIt", "patch -p1 < %1", "(R)")
    assert expand("%ApplyIt", m) is None  # parametric macros are not ours to run


def test_global_expands_once_define_lazily() -> None:
    ev = preprocess("%define a %{b}\n%global c %{b}\n%define b 2\n")
    assert ev.expand("%a") == "2"
    assert ev.expand("%c") is None  # b was undefined when %global c was made


def test_undefine_pops_to_the_previous_definition() -> None:
    ev = preprocess("%define x 1\n%define x 2\n%undefine x\n")
    assert ev.expand("%x") == "1"


def test_normalize_arch() -> None:
    assert normalize_arch("amd64") == "x86_64"
    assert normalize_arch("ARM64") == "aarch64"
    assert normalize_arch("aarch64") == "aarch64"


# ---- expressions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1", 1),
        ("0", 0),
        ("036", 36),
        ('"a" == "a"', 1),
        ('"a" != "a"', 0),
        ('"abc" < "abd"', 1),
        ("2 > 1 && 1 >= 1", 1),
        ("1 <= 0 || 0", 0),
        ("!0", 1),
        ("!!3", 1),
        ("-(2 - 5)", 3),
        ("(1 || 0) && !(0 || 0)", 1),
        ("1 || 0 && 0", 1),  # && binds tighter than ||
        ("7 / 2", 3),
        ('"a" + "b" == "ab"', 1),
        ("1 ? 2 : 3", 2),
        ("x86_64 == x86_64", 1),  # bare words read as strings, as old rpm did
    ],
)
def test_expressions(expr: str, value: int) -> None:
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", ["", "1 +", "(1", '"a" == 1', "1 / 0", '"unterminated', "1 2", '"a" - "b"'])
def test_bad_expressions_are_undecided(expr: str) -> None:
    assert evaluate(expr) is None


def test_three_valued_logic() -> None:
    u = UNKNOWN
    assert evaluate(f"0 && {u}") == 0
    assert evaluate(f"1 || {u}") == 1
    assert evaluate(f"1 && {u}") is None
    assert evaluate(f'"{u}" == "x"') is None
    assert evaluate(f"!{u}") is None
    assert evaluate(f"{u} ? 1 : 1") == 1  # both arms agree


def test_condition_says_why() -> None:
    e = Expander(Macros({"kver": "%(uname -r)"}))
    assert e.condition("1") == (True, None)
    value, why = e.condition('"%{kver}" == "x"')
    assert value is None and why
    value, why = e.condition('"a" == 1')
    assert value is None and "types must match" in (why or "")


# ---- %if blocks ---------------------------------------------------------------------------


def test_if_else_and_nesting() -> None:
    spec = "%if 1\na\n%if 0\nb\n%else\nc\n%endif\n%else\nd\n%endif\ne\n"
    assert kept(spec) == ["a", "c", "e"]


def test_elif_chain_takes_the_first_true_branch() -> None:
    spec = "%if 0\na\n%elif 1\nb\n%elif 1\nc\n%else\nd\n%endif\n"
    assert kept(spec) == ["b"]


def test_ifarch_family() -> None:
    spec = (
        "%ifarch x86_64 aarch64\nboth\n%endif\n%ifnarch aarch64\nnot-arm\n%endif\n"
        "%ifarch %{ix86}\nx86-32\n%endif\n%ifos linux\nlinux\n%endif\n%ifnos linux\nother-os\n%endif\n"
        "%ifarch ppc64le\nppc\n%elifarch aarch64\narm\n%else\nelse\n%endif\n"
    )
    assert kept(spec, "x86_64") == ["both", "not-arm", "linux", "else"]
    assert kept(spec, "aarch64") == ["both", "linux", "arm"]
    assert kept(spec, "i686") == ["not-arm", "x86-32", "linux", "else"]


def test_nested_conditions_inside_a_false_branch_are_not_evaluated() -> None:
    ev = preprocess("%if 0\n%if %(false)\nx\n%endif\n%endif\n")
    assert ev.lines == () and ev.notes == () and ev.undecided == ()


def test_defines_follow_the_branches_in_order() -> None:
    spec = (
        "%define with_patch 0\n%ifarch aarch64\n%define with_patch 1\n%endif\n"
        "%if 0%{?with_patch}\npatched\n%endif\n%global rel 1%{?dist}\n"
    )
    assert kept(spec, "x86_64") == []
    assert kept(spec, "aarch64") == ["patched"]
    assert preprocess(spec, "x86_64", {"dist": ".oe1"}).expand("%rel") == "1.oe1"


def test_bconds() -> None:
    spec = (
        "%bcond_with clang\n%bcond_without perf\n%bcond lto 0\n"
        "%if %{with clang}\nclang\n%endif\n%if %{with perf}\nperf\n%endif\n%if %{with lto}\nlto\n%endif\n"
    )
    assert kept(spec) == ["perf"]
    assert kept(spec, macros={"_with_clang": "--with-clang", "_without_perf": "--without-perf"}) == ["clang"]


def test_undecided_condition_keeps_both_branches_and_notes_it() -> None:
    spec = 'Name: k\n%if "%(uname -m)" == "x"\n%define v 1\na\n%else\nb\n%endif\nc\n'
    ev = preprocess(spec, label="kernel.spec")
    assert [(x.text, x.certain) for x in ev.lines] == [("Name: k", True), ("a", False), ("b", False), ("c", True)]
    assert ev.undecided == (2,)
    assert ev.notes == (
        'kernel.spec: could not evaluate \'%if "%(uname -m)" == "x"\' at line 2 '
        "(it depends on a value only rpm could compute); both branches considered",
    )
    assert ev.expand("%v") is None  # defined in an undecided branch: unknown


def test_known_false_side_decides_despite_unknown() -> None:
    assert kept('%if 0 && "%(date)" == "x"\na\n%else\nb\n%endif\n') == ["b"]


def test_tags_define_macros_and_sources_patches() -> None:
    spec = (
        "%global hulkrelease 2102.2.0\nName: kernel\nVersion: 4.19.90\nRelease: %{hulkrelease}.0068%{?dist}\n"
        "Source0: linux-%{version}.tar.gz#/kernel.tar.gz\nSource9002: series.conf\n"
        "Patch0001: 0001-a.patch\nPatch: https://example.org/p/0002-b.patch\n"
        "%ifarch aarch64\nPatch10: arm.patch\n%endif\n%prep\nApplyPatch %{PATCH1}\n"
    )
    ev = preprocess(spec, "x86_64", {"dist": ".ctl2"})
    assert ev.expand("%{name}-%{version}-%{release}") == "kernel-4.19.90-2102.2.0.0068.ctl2"
    assert dict(ev.sources) == {0: "kernel.tar.gz", 9002: "series.conf"}
    assert dict(ev.patches) == {1: "0001-a.patch", 2: "0002-b.patch"}
    assert [x.text for x in ev.section("prep")] == ["ApplyPatch %{PATCH1}"]
    assert ev.expand("ApplyPatch %{PATCH1}") == "ApplyPatch 0001-a.patch"


def test_sections_and_continuations() -> None:
    spec = "Name: k\n%description\nd\n%prep\nmake \\\n  all\n%changelog\n* x\n"
    ev = preprocess(spec)
    assert [(x.number, x.section) for x in ev.lines] == [
        (1, "preamble"),
        (2, "description"),
        (3, "description"),
        (4, "prep"),
        (5, "prep"),
        (7, "changelog"),
        (8, "changelog"),
    ]
    assert list(logical_lines("a\\\nb\nc")) == [(1, "a\\\nb"), (3, "c")]


def test_multiline_define_body_is_not_read_as_directives() -> None:
    spec = "%define helper() \\\n%if 1\\\nx\\\n%endif\nafter\n"
    assert kept(spec) == ["after"]


def test_builtin_macros_cover_the_arch() -> None:
    table = builtin_macros("aarch64")
    assert table["_arch"] == "aarch64" and "aarch64" in table["arm64"]


# ---- errors and hostile input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("%if 1\na\n", "kernel.spec: line 1: %if without %endif"),
        ("a\n%endif\n", "kernel.spec: line 2: %endif without %if"),
        ("%else\n", "kernel.spec: line 1: %else without %if"),
        ("%if 1\n%else\n%else\n%endif\n", "kernel.spec: line 3: %else after the %else of the %if at line 1"),
        ("%if 1\n%else\n%elif 1\n%endif\n", "kernel.spec: line 3: %elif after the %else of the %if at line 1"),
    ],
)
def test_broken_nesting_is_a_one_line_error(spec: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        preprocess(spec, label="kernel.spec")
    assert str(err.value) == message and "\n" not in str(err.value)


def test_deep_nesting_is_refused() -> None:
    spec = "%if 1\n" * 10_000 + "x\n" + "%endif\n" * 10_000
    with pytest.raises(SpecError, match=r"^s: line 257: %if blocks nest deeper than 256$"):
        preprocess(spec, label="s")


def test_deep_nesting_under_the_bound_works() -> None:
    spec = "%if 1\n" * 200 + "x\n" + "%endif\n" * 200
    assert kept(spec) == ["x"]


def test_exponential_macros_are_bounded() -> None:
    # a0 doubles 30 times (under the nesting bound): 2**30 expansions if nothing stopped it
    spec = "%define a0 x\n" + "".join(f"%define a{i} %{{a{i - 1}}}%{{a{i - 1}}}\n" for i in range(1, 31))
    spec += "%if %{a30} == 1\nyes\n%else\nno\n%endif\n"
    start = time.monotonic()
    ev = preprocess(spec)
    assert time.monotonic() - start < 30  # a bound, not a benchmark
    assert [x.text for x in ev.lines] == ["yes", "no"] and all(not x.certain for x in ev.lines)
    assert any("1 MiB" in n or "budget" in n for n in ev.notes)


def test_self_reference_is_bounded() -> None:
    ev = preprocess("%define a %{a}\n%if %{a}\nx\n%endif\n")
    assert [x.certain for x in ev.lines] == [False]
    assert any("nest too deeply" in n for n in ev.notes)


def test_huge_and_deep_expressions_are_undecided_not_crashes() -> None:
    deep = "(" * 5000 + "1" + ")" * 5000
    assert evaluate(deep) is None
    assert evaluate("!" * 50_000 + "1") == 1
    assert evaluate(" || ".join(["0"] * 20_000)) is None  # longer than MAX_EXPR
    assert evaluate("9" * 5000) is None
    ev = preprocess(f"%if {deep}\nx\n%endif\n")
    assert ev.undecided == (1,)


def test_many_undecided_conditions_are_counted_not_listed() -> None:
    spec = '%if "%(x)" == ""\na\n%endif\n' * 100
    ev = preprocess(spec)
    assert len(ev.undecided) == 100
    assert len(ev.notes) == 21 and ev.notes[-1] == "spec: 80 more conditions could not be evaluated"


def test_unterminated_braces_and_nul_bytes() -> None:
    assert kept("%if 0%{?x\na\n%endif\n") == ["a ?"]
    assert kept("%if 1\x00\na\n%endif\n") == ["a"]


def test_large_spec_memory_stays_bounded() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = "%global x %{?y:1}%{!?y:0}\n%if %{x}\na\n%endif\n" * 20_000
    ev = preprocess(spec)
    assert len(ev.lines) == 0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200_000


def test_constructs_of_real_kernel_specs() -> None:
    """Shapes seen in openEuler's kernel.spec: option-driven defines, multi-line parametric
    templates, %{expand:%%global ...}, %[ ? : ] in a multi-line %global, %toolchain tests."""
    spec = (
        "%bcond_with toolchain_clang\n%if %{with toolchain_clang}\n%global toolchain clang\n%endif\n"
        "%ifarch aarch64\n%define with_64kb  %{?_with_64kb: 1} %{?!_with_64kb: 0}\n"
        "%if %{with_64kb}\n%global package64kb -64kb\n%endif\n%else\n%define with_64kb 0\n%endif\n"
        "%define with_perf %{?_without_perf: 0} %{?!_without_perf: 1}\n"
        "Name: kernel%{?package64kb}\n"
        "%define tmpl(n:) \\\n%package -n %{-n*}-extra\\\nSummary: x %{-n*}\\\n%{nil}\n"
        "%tmpl -n kernel\n%{expand:%%global opts %{?opts} -p x}\n"
        '%prep\n%if "%toolchain" == "clang"\nclang-only\n%endif\n'
        '%global perf_make \\\n    make FLAGS="%[ "%{toolchain}" == "clang" ? "-z now" : "" ]" V=1\n'
        "%if %{with_perf}\nperf\n%endif\n"
    )
    for arch, macros, name in (("x86_64", {}, "kernel"), ("aarch64", {"_with_64kb": "1"}, "kernel-64kb")):
        ev = preprocess(spec, arch, macros, label="kernel.spec")
        assert ev.notes == ()
        assert ev.expand("%{name}") == name
        assert ev.expand("%perf_make") == 'make FLAGS="" V=1'
        assert [x.text for x in ev.section("prep")] == ["perf"]
    ev = preprocess(spec, "x86_64", {"_with_toolchain_clang": "1"})
    assert ev.expand("%perf_make") == 'make FLAGS="-z now" V=1'
    assert [x.text for x in ev.section("prep")] == ["clang-only", "perf"]
