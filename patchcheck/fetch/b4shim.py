"""The one module that touches b4 and liblore: their answers come out as typed values.

b4 keeps its configuration and connections in module globals; everything here sets them
from our options, never from the user's git config, and the git b4 runs itself is
sys/git.py's, with no repository. Nothing goes to ``~/.cache/b4``: liblore runs without a
cache of its own (ours is the cache) and b4's cache code is never reached. b4 and liblore
are imported where they are used: a warm run that finds every selection in the cache never
needs them (b4 alone costs a quarter of a second to import).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from patchcheck.errors import ToolError
from patchcheck.fetch.http import HttpStatus
from patchcheck.fetch.mail import Msg, keeping_headers, show_diff_parts, with_msgid
from patchcheck.sys.git import git

if TYPE_CHECKING:
    import email.message
    import email.parser

    import liblore
    import requests

# b4's default List-Id preference: the least mangling archive copy wins among duplicates.
_LISTID_PREFERENCE = ["*.feeds.kernel.org", "*.linux.dev", "*.kernel.org", "*"]

_IMPORT_LOCK = threading.Lock()
_libs_loaded = False

# b4's configuration and network objects are module globals: one lock serialises every
# use of them, and each use re-installs the configuration of the archive doing it.
_B4_LOCK = threading.RLock()


def load() -> None:
    """Import b4, liblore and requests once, under a lock, before any use from a worker
    thread: they import each other, and threads importing them at once can see a half
    initialised module. Every entry point below calls this first; the functions then
    import them locally, for their names."""
    global _libs_loaded
    if _libs_loaded:
        return
    with _IMPORT_LOCK:
        if not _libs_loaded:
            import b4  # noqa: F401
            import liblore  # noqa: F401
            import liblore.utils  # noqa: F401
            import requests  # noqa: F401
            import requests.adapters  # noqa: F401
            import urllib3.connection  # noqa: F401
            import urllib3.connectionpool  # noqa: F401

            _libs_loaded = True


def quiet() -> None:
    """b4 and liblore log warnings (retries, duplicates); we report errors ourselves."""
    for name in ("b4", "liblore"):
        lg = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
            lg.addHandler(logging.NullHandler())
        lg.propagate = False


def version() -> str:
    load()
    import b4

    return str(b4.__VERSION__)


def _b4_config(base: str) -> dict[str, Any]:
    import b4

    cfg: dict[str, Any] = copy.deepcopy(b4.DEFAULT_CONFIG)
    cfg.update(
        {
            "midmask": f"{base}/%s",
            "searchmask": f"{base}/?x=m&q=%s",
            # b4 stores it split (see b4._setup_main_config); get_preferred_duplicate wants a list
            "listid-preference": list(_LISTID_PREFERENCE),
            "attestation-policy": "off",
            "attestation-check-dkim": "no",
            "attestation-checkmarks": "plain",
            "gpgbin": "gpg",
            "save-maildirs": "no",
            "cache-expire": "10",
        }
    )
    return cfg


def _b4_subprocess(
    cmdargs: list[str], stdin: bytes | None = None, rundir: str | None = None
) -> tuple[int, bytes, bytes]:
    """b4's one door to subprocesses (``b4._run_command``) while we use it.

    b4 runs git itself (``git patch-id`` for every patch it reads), in the current folder
    with the user's environment: a repository there, or one ``GIT_DIR`` names, would have
    its config read (an include of a FIFO hangs the run; keys can name programs). Here its
    git calls go through sys/git.py's locked git with no repository at all (``--git-dir
    /dev/null``: what b4's parsing asks, ``git patch-id``, needs none); a call naming a
    repository, or any other program, is refused (b4 then does without: a patch-id of None).
    """
    if len(cmdargs) < 3 or cmdargs[:2] != ["git", "--no-pager"] or rundir is not None:
        return 1, b"", b"patchcheck: b4 may not run " + " ".join(cmdargs[:3]).encode()
    if cmdargs[2] in ("--git-dir", "-C"):
        return 1, b"", b"patchcheck: b4 may not run git in a repository"
    try:
        res = git(cmdargs[2:], git_dir=os.devnull, input=stdin)
    except ToolError as e:
        return 1, b"", str(e).encode()
    return res.returncode, res.stdout, res.stderr


def _b4_subprocess_no_patch_id(
    cmdargs: list[str], stdin: bytes | None = None, rundir: str | None = None
) -> tuple[int, bytes, bytes]:
    """``_b4_subprocess`` without ``git patch-id`` (b4 takes the failure as a patch-id of
    None), for a series read whose answer patch-ids cannot change (see ``Parsed.needs_patch_ids``):
    the process per patch was most of the CPU of reading a one-patch thread."""
    if cmdargs[2:3] == ["patch-id"]:
        return 1, b"", b"patchcheck: patch-ids cannot matter here"
    return _b4_subprocess(cmdargs, stdin, rundir)


# ---- what b4 makes of a thread, as plain values ---------------------------------------


@dataclass(frozen=True)
class MailInfo:
    """b4's reading of one message (``b4.LoreMessage``)."""

    msgid: str
    subject: str  # without the [PATCH vN m/n] prefix
    full_subject: str
    fromname: str
    fromemail: str
    date: str  # ISO 8601
    revision: int
    counter: int
    expected: int
    reply: bool
    has_diff: bool
    in_reply_to: str | None
    numbered_patch: bool  # a "[PATCH m/n]" subject that is not a reply

    @property
    def one_of_many(self) -> bool:
        """A patch m/n, with a diff, of a series of several (not its cover, not a reply)."""
        return self.numbered_patch and self.has_diff and self.counter >= 1 and self.expected > 1


@dataclass(frozen=True)
class SeriesInfo:
    """One revision of the series (``b4.LoreSeries``): ``patches[0]`` is the cover letter."""

    revision: int
    expected: int
    patches: tuple[MailInfo | None, ...]
    has_cover: bool


@dataclass(frozen=True)
class ThreadInfo:
    """The thread as b4 sorted it (``b4.LoreMailbox``)."""

    revisions: tuple[int, ...]  # revisions with at least one patch
    chosen: int | None  # the revision asked for, else the named patch's, else b4's latest
    loose: tuple[MailInfo, ...]  # messages b4 could not place (unknowns, follow-ups)
    named: MailInfo | None = None  # b4's reading of the message asked about, if in the thread


def _info(lm: Any) -> MailInfo:
    return MailInfo(
        msgid=str(lm.msgid),
        subject=str(lm.subject),
        full_subject=str(lm.full_subject),
        fromname=str(lm.fromname or ""),
        fromemail=str(lm.fromemail or ""),
        date=lm.date.isoformat(),
        revision=int(lm.revision),
        counter=int(lm.counter),
        expected=int(lm.expected),
        reply=bool(lm.reply),
        has_diff=bool(lm.has_diff),
        in_reply_to=str(lm.in_reply_to) if lm.in_reply_to else None,
        numbered_patch=bool(lm.lsubject.patch and not lm.lsubject.reply),
    )


def _mailbox(msgs: Sequence[Msg]) -> tuple[Any, tuple[int, ...]]:
    """b4's view of the thread, and the revisions that have at least one patch."""
    import b4

    lmbx = b4.LoreMailbox()
    for m in msgs:
        with contextlib.suppress(ValueError):  # b4 refuses messages without a Message-Id
            lmbx.add_message(m.msg)
    revisions = sorted(r for r, s in lmbx.series.items() if any(p is not None for p in s.patches[1:]))
    return lmbx, tuple(revisions)


class Parsed:
    """A thread's messages as b4 reads them, parsed once: building b4's LoreMessage objects
    (a header parse per field) is most of what b4 costs, and the thread's check, its
    meta.json summaries and each fix's selection all ask of the same messages. Used through
    B4 only (under its lock).

    What is kept are plain values taken before any ``get_series`` (which mutates the
    mailbox and its messages): the revisions, b4's loose messages, each message's reading
    in the mailbox (``add_message`` may set its revision from its cover letter or
    neighbours) and on its own (the revision its subject gives). The mailbox itself serves
    one series question, untouched; later questions get a mailbox built afresh, as b4 would
    build it, and every answer is kept per (revision, named)."""

    def __init__(self, msgs: Sequence[Msg], lmbx: Any, revisions: tuple[int, ...]) -> None:
        self.msgs = tuple(msgs)
        self.revisions = revisions
        self.loose = tuple(_info(lm) for lm in [*lmbx.unknowns, *lmbx.followups])
        self._placed: dict[str, MailInfo] = {}  # msgid -> its reading in the mailbox
        self._alone: dict[int, MailInfo] = {}  # id(message) -> its reading on its own
        for mid, lm in lmbx.msgid_map.items():
            info = _info(lm)
            self._placed[mid] = info
            self._alone[id(lm.msg)] = replace(info, revision=int(lm.lsubject.revision))
        # the revisions of the patches (diffs, not replies) wherever b4 filed them
        self._patch_revisions = {i.revision for i in self._placed.values() if i.has_diff and not i.reply}
        self._lmbx: Any = lmbx
        self.answers: dict[tuple[int | None, str | None], tuple[ThreadInfo, SeriesInfo | None]] = {}

    def named(self, msgid: str | None) -> MailInfo | None:
        return self._placed.get(msgid) if msgid else None

    def alone(self, m: Msg) -> MailInfo | None:
        """``b4.LoreMessage(m.msg)``'s reading, when the mailbox holds this very message."""
        return self._alone.get(id(m.msg))

    def needs_patch_ids(self, revision: int) -> bool:
        """Whether b4's series of ``revision`` may depend on patch-ids. b4 uses them only to
        carry follow-up trailers over from a patch of another revision (get_series'
        ``trailer_map``; the code-review search that also fills it is off): with every patch
        of the thread in ``revision`` that map stays empty (and get_series of
        ``revision - 1``, for a partial reroll, finds no series), so each patch-id would be
        a ``git`` process for nothing."""
        return not self._patch_revisions <= {revision}

    def untouched(self) -> Any:
        """A mailbox of the thread that no ``get_series`` has mutated (call under ``B4._env``)."""
        lmbx, self._lmbx = self._lmbx, None
        return lmbx if lmbx is not None else _mailbox(self.msgs)[0]


# ---- mbox bytes to messages ------------------------------------------------------------


def split_thread(mbox: bytes, dedupe: bool) -> list[bytes]:
    """The messages of an mboxrd; duplicates (the same mail from two lists) dropped when
    ``dedupe``, keeping the least mangled copy."""
    load()
    import liblore.utils

    if dedupe:
        return liblore.utils.split_and_dedupe_as_bytes(mbox, list(_LISTID_PREFERENCE))
    return liblore.utils.split_mbox_as_bytes(mbox)


_PARSER: email.parser.BytesParser[email.message.EmailMessage] | None = None


def _parser() -> email.parser.BytesParser[email.message.EmailMessage]:
    """liblore's parser (``liblore.utils.parse_message``: its policy), keeping each parsed header."""
    global _PARSER
    if _PARSER is None:
        import email.parser

        import liblore

        _PARSER = email.parser.BytesParser(policy=keeping_headers(liblore.emlpolicy))
    return _PARSER


def parse_msgs(raws: Sequence[bytes], synth_prefix: str | None = None) -> list[Msg]:
    """Parsed messages; those without a Message-Id are dropped, or given a made-up one
    (``<synth_prefix>-N@patchcheck.invalid``) when ``synth_prefix`` is set."""
    load()
    import liblore.utils

    out: list[Msg] = []
    for n, raw in enumerate(raws):
        if not raw.strip():
            continue
        if synth_prefix is not None:
            raw = with_msgid(raw, f"{synth_prefix}-{n + 1}@patchcheck.invalid")
        msg = _parser().parsebytes(raw)
        show_diff_parts(msg)
        mid = liblore.utils.get_clean_msgid(msg)
        if mid:
            out.append(Msg(mid, raw, msg))
    return out


class B4:
    """b4 and liblore, configured for one archive (``base``, e.g. ``https://lore.kernel.org/all``)."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self._lock = threading.Lock()
        self._node: liblore.LoreNode | None = None

    def _b4_node(self) -> liblore.LoreNode:
        """b4 parsing never needs the network; this node exists so that b4's global points
        at our archive, not at one built from the user's git config. Built on first use."""
        import liblore

        with self._lock:
            if self._node is None:
                self._node = liblore.LoreNode(
                    self.base, cache_dir=None, follow_upstream=False, request_timeout=(self.timeout, self.timeout)
                )
            return self._node

    @contextlib.contextmanager
    def _env(self) -> Iterator[None]:
        """Install our b4 configuration for the duration of a parse (b4 reads it from globals)."""
        load()
        import b4

        node = self._b4_node()
        with _B4_LOCK:
            quiet()
            b4.MAIN_CONFIG = _b4_config(self.base)
            b4.USER_CONFIG = {"name": "patchcheck", "email": "patchcheck@invalid"}
            b4.SENDEMAIL_CONFIG = {}
            # No code-review trailer searches, no patchwork: only the thread we have counts.
            b4.can_network = False
            # If some b4 path wants a node, it gets ours (never one built from ~/.gitconfig
            # with its cache under ~/.cache/b4); its own session is rebuilt on demand.
            b4.LORENODE = node
            b4.REQSESSION = None
            b4._CACHE_CLEANED = True  # never sweep the user's ~/.cache/b4
            b4._run_command = _b4_subprocess  # no git in the current folder's repository
            yield

    def strict_ids(self, msgs: Sequence[Msg], msgid: str) -> set[str] | None:
        """Ids of the messages b4 counts as ``msgid``'s thread (None: b4 has no opinion)."""
        import b4
        import liblore.utils

        if len(msgs) == 1 and msgs[0].msgid == msgid:
            # b4 keeps the one message or has no opinion: either way it stays (most fixes
            # are such threads, and b4's answer builds a LoreMessage for it)
            return {msgid}

        with self._env():
            strict = b4.get_strict_thread([m.msg for m in msgs], msgid)
        if not strict:
            return None
        return {str(liblore.utils.get_clean_msgid(m)) for m in strict}

    def parse(self, msgs: Sequence[Msg]) -> Parsed:
        """b4's reading of the thread, made once for every question asked of it below."""
        with self._env():
            return Parsed(msgs, *_mailbox(msgs))

    def read(
        self, parsed: Parsed, revision: int | None = None, series: bool = True, named: str | None = None
    ) -> tuple[ThreadInfo, SeriesInfo | None]:
        """The thread's revisions and, when ``series`` and there is one, the series of
        ``revision``; with no revision, that of ``named`` when it is one patch of a
        several-patch series, else b4's latest. Each answer is made once per thread (b4's
        get_series mutates the mailbox: each answer comes from a mailbox it never touched)."""
        one = parsed.named(named)
        if not parsed.revisions or not series:
            return ThreadInfo(parsed.revisions, None, parsed.loose, one), None
        key = (revision, named)
        if key not in parsed.answers:
            parsed.answers[key] = self._series(parsed, revision, one)
        return parsed.answers[key]

    def _series(
        self, parsed: Parsed, revision: int | None, one: MailInfo | None
    ) -> tuple[ThreadInfo, SeriesInfo | None]:
        import b4

        revisions = parsed.revisions
        with self._env():
            lmbx = parsed.untouched()
            chosen = revision
            if chosen is None and one is not None and one.one_of_many and one.revision in revisions:
                chosen = one.revision
            if chosen is None:
                chosen = lmbx.get_latest_revision() or revisions[-1]
            info = ThreadInfo(revisions, chosen, parsed.loose, one)
            if chosen not in revisions and revision is not None:
                return info, None
            if not parsed.needs_patch_ids(chosen):
                b4._run_command = _b4_subprocess_no_patch_id  # until the next _env
            lser = lmbx.get_series(chosen, codereview_trailers=False)
            if lser is None:
                return info, None
            picked = SeriesInfo(
                revision=chosen,
                expected=int(lser.expected),
                patches=tuple(None if lm is None else _info(lm) for lm in lser.patches),
                has_cover=bool(lser.has_cover),
            )
        return info, picked

    def infos(self, parsed: Parsed) -> list[tuple[Msg, MailInfo]]:
        """b4's reading of each message it accepts, each on its own (``b4.LoreMessage``)."""
        import b4

        out: list[tuple[Msg, MailInfo]] = []
        for m in parsed.msgs:
            alone = parsed.alone(m)
            if alone is None:
                # not in the mailbox (a second copy of a Message-Id, or one b4 refused)
                with self._env():
                    try:
                        alone = _info(b4.LoreMessage(m.msg))
                    except ValueError:
                        continue
            out.append((m, alone))
        return out

    def download(self, msgid: str, session: requests.Session) -> bytes:
        """The thread of ``msgid`` as liblore gets it (``t.mbox.gz``, decompressed), over
        ``session``. HttpStatus for an HTTP error; anything else as requests raised it."""
        load()
        import liblore

        node = liblore.LoreNode(
            self.base,
            cache_dir=None,
            follow_upstream=False,
            auto_probe=False,
            request_timeout=(self.timeout, self.timeout),
        )
        node.set_requests_session(session)
        try:
            return node.get_mbox_by_msgid(msgid, nocache=True)
        except liblore.RemoteError as e:
            if e.status_code is not None:
                raise HttpStatus(e.status_code) from e
            raise
        finally:
            node.close()
