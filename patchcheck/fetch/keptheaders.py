"""An email policy whose header values are parsed once each.

The email package parses a header anew on every ``msg.get`` (its header classes are the CPU
hot spot of reading a mail), and b4, liblore and we ask a patch mail for its Content-Type a
dozen times, its Message-Id six. The parsed headers are immutable, so sharing them is safe.
A module of its own: importing the email package's policies costs ~4 ms, which a run that
reads no mail (a warm check) does not pay.
"""

from __future__ import annotations

import email.message
import email.policy
import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    _Policy = email.policy.EmailPolicy[email.message.EmailMessage]
else:
    _Policy = email.policy.EmailPolicy


class KeptHeaders(_Policy):
    """``email.policy.EmailPolicy`` with each header value parsed once."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if type(value) is not str:  # already a header object (set by a program), or odd
            return super().header_fetch_parse(name, value)
        return _parsed_header(self, name, value)


@functools.lru_cache(maxsize=4096)
def _parsed_header(policy: _Policy, name: str, value: str) -> Any:
    return _Policy.header_fetch_parse(policy, name, value)
