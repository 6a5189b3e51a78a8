"""How much the fetch stage reads from strangers: bytes per HTTP answer, per thread, per
local mbox file, and mails per thread. Each has a default, an option and an environment
variable; a breach names the limit and how to raise it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from patchcheck.errors import BadInput
from patchcheck.text.units import format_size, parse_size


@dataclass(frozen=True)
class Limit:
    option: str
    env: str
    default: int
    is_size: bool  # bytes (else a count)

    def show(self, value: int) -> str:
        return format_size(value) if self.is_size else str(value)

    def breach(self, value: int) -> str:
        """``exceeds --max-x (64 MiB); raise it with --max-x`` for the limit set to ``value``."""
        return f"exceeds {self.option} ({self.show(value)}); raise it with {self.option} or {self.env}"


ANSWER_BYTES = Limit("--max-answer-bytes", "PATCHCHECK_MAX_ANSWER_BYTES", 64 << 20, True)
THREAD_BYTES = Limit("--max-thread-bytes", "PATCHCHECK_MAX_THREAD_BYTES", 256 << 20, True)
THREAD_MAILS = Limit("--max-thread-mails", "PATCHCHECK_MAX_THREAD_MAILS", 5000, False)
MBOX_BYTES = Limit("--max-mbox-bytes", "PATCHCHECK_MAX_MBOX_BYTES", 64 << 20, True)


def _resolve(limit: Limit, opt: int | None) -> int:
    if opt is not None:
        return opt
    raw = os.environ.get(limit.env)
    if not raw:
        return limit.default
    try:
        return parse_size(raw) if limit.is_size else _count(raw)
    except ValueError as e:
        raise BadInput(f"{limit.env}={raw!r}: {e}") from None


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Limits:
    answer_bytes: int = ANSWER_BYTES.default  # one HTTP answer, as received
    thread_bytes: int = THREAD_BYTES.default  # one thread, decompressed
    thread_mails: int = THREAD_MAILS.default  # mails in one thread
    mbox_bytes: int = MBOX_BYTES.default  # one local ``mbox =`` file

    @classmethod
    def resolve(
        cls,
        answer_bytes: int | None = None,
        thread_bytes: int | None = None,
        thread_mails: int | None = None,
        mbox_bytes: int | None = None,
    ) -> Limits:
        """Options first, then the environment variables, then the defaults."""
        return cls(
            _resolve(ANSWER_BYTES, answer_bytes),
            _resolve(THREAD_BYTES, thread_bytes),
            _resolve(THREAD_MAILS, thread_mails),
            _resolve(MBOX_BYTES, mbox_bytes),
        )
