"""cliargs.py: a run builds only its verb's parser, and parses exactly as the whole one does;
--help still lists every verb."""

from __future__ import annotations

import pytest

from patchcheck.cliargs import VERBS, build_parser

ARGV = {
    "check": ["check", "--tree", "t", "--bug", "b", "--format", "json", "-j", "3", "--shard", "1/2"],
    "audit": ["audit", "--tree", "a", "--tree", "b", "--all", "--fail-on", "conflicting", "--offline"],
    "fetch": ["fetch", "--all", "--timeout", "5"],
    "bugs": ["bugs", "show", "perf-bpf"],
    "trees": ["trees", "list"],
    "triage": ["triage", "-", "--top", "3"],
    "merge": ["merge", "a.json", "b.json", "-o", "all.json"],
    "backport": ["backport", "--tree", "t", "--bug", "b", "-o", "out"],
    "cache": ["cache", "prune", "--older-than", "30d"],
    "doctor": ["doctor"],
}


def test_every_verb_has_a_case() -> None:
    assert set(ARGV) == set(VERBS)


@pytest.mark.parametrize("verb", VERBS)
def test_one_verbs_parser_parses_as_the_whole_one(verb: str) -> None:
    assert vars(build_parser(verb).parse_args(ARGV[verb])) == vars(build_parser().parse_args(ARGV[verb]))


def test_one_verbs_parser_has_no_other_verb() -> None:
    sub = build_parser("audit")._subparsers
    assert sub is not None
    assert list(sub._group_actions[0].choices) == ["audit"]  # type: ignore[attr-defined]


def test_the_whole_help_lists_every_verb() -> None:
    text = build_parser().format_help()
    assert all(f"    {v} " in text or f"    {v}\n" in text for v in VERBS)
