"""Fetch stage: obtain a fix's patch series from a public-inbox archive (or a local mbox).

Threads are fetched by Message-Id with liblore (b4's transport) and taken apart with b4's
own classes (``LoreMailbox``/``LoreSeries``), in-process.  b4 keeps its configuration and
connections in module globals; everything here sets them from our options, never from the
user's git config.  Nothing goes to ``~/.cache/b4``: liblore runs without a cache of its
own (ours is the cache) and b4's cache code is never reached.

Cache layout (``cache_dir/series/<safe msgid>/``)::

    thread.mbox        the thread exactly as fetched (decompressed)
    meta.json          msgid, lore_url, fetch time, sha256 of thread.mbox, message summaries
    v2-p1,3.mbox       the selected messages as received, mboxrd (``git am
                       --patch-format=mboxrd``); derived, rebuilt when missing; v2-all.mbox
                       when the fix takes every patch
    sel-v2-p1,3.json   a fix's selection (the PatchMail fields, diffs in base64), tied to
                       the sha256 of thread.mbox; derived like the am file: a warm run
                       builds the Series from it without b4, and an unreadable or stale
                       one is ignored and rewritten. sel-latest-all.json: no revision pinned

An entry is written into ``series/.tmp-*`` and renamed into place whole, so an interrupted
fetch never leaves an entry that a later run trusts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import email.message
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchcheck import __version__
from patchcheck.errors import BadInput, SeriesError
from patchcheck.model import Fix, PatchMail, Series
from patchcheck.sys.atomic import atomic_write

if TYPE_CHECKING:
    import liblore
    import requests

# b4, liblore and requests are imported where they are used: a warm run that finds every
# selection in the cache never needs them (b4 alone costs a quarter of a second to import).

log = logging.getLogger(__name__)

DEFAULT_LORE_URL = "https://lore.kernel.org"
CACHE_FORMAT = 1
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
# A temp folder younger than this may belong to a fetch still writing it.
_TMP_GRACE_SECONDS = 60.0

# b4's default List-Id preference: the least mangling archive copy wins among duplicates.
_LISTID_PREFERENCE = ["*.feeds.kernel.org", "*.linux.dev", "*.kernel.org", "*"]

_HUNK_RE = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_GIT_DIFF_RE = re.compile(rb"^diff --git ", re.M)
_PLAIN_DIFF_RE = re.compile(rb"^--- \S[^\n]*\n\+\+\+ ", re.M)
_FIXES_RE = re.compile(r"^[ \t]*Fixes:[ \t]*(\S.*?)[ \t]*$", re.M | re.I)
_LINK_RE = re.compile(r"^[ \t]*Link:[ \t]*(\S+)", re.M | re.I)
_CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_UPSTREAM_RES = (
    re.compile(r"^[ \t]*commit ([0-9a-f]{40}) upstream", re.M | re.I),
    re.compile(r"\[[ \t]*Upstream commit ([0-9a-f]{40})[ \t]*\]", re.I),
    re.compile(r"\(cherry picked from commit ([0-9a-f]{40})\)", re.I),
)
_INBODY_FROM_RE = re.compile(r"\A\s*From:[ \t]*(\S.*?)[ \t]*$", re.M)
_MSGID_HDR_RE = re.compile(rb"^message-id:", re.I | re.M)
_GTFROM_QUOTE_RE = re.compile(rb"(?m)^(>*From )")


# ---- b4 / liblore containment ------------------------------------------------------

_IMPORT_LOCK = threading.Lock()
_libs_loaded = False


def _import_libs() -> None:
    """Import b4, liblore and requests once, under a lock, before any use from a worker
    thread: they import each other, and threads importing them at once can see a half
    initialised module. Every path into them (Fetcher._thread, _select, _b4_node) calls
    this first; the functions then import them locally, for their names."""
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


# b4's configuration and network objects are module globals: one lock serialises every
# use of them, and each use re-installs the configuration of the Fetcher doing it.
_B4_LOCK = threading.RLock()


def _quiet_libraries() -> None:
    """b4 and liblore log warnings (retries, duplicates); we report errors ourselves."""
    for name in ("b4", "liblore"):
        lg = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
            lg.addHandler(logging.NullHandler())
        lg.propagate = False


def _archive_base(lore_url: str) -> str:
    """``https://lore.kernel.org`` -> ``https://lore.kernel.org/all`` (a list path is kept)."""
    url = lore_url.strip().rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadInput(f"lore URL {lore_url!r} is not an http(s) URL")
    if not parsed.path or parsed.path == "/":
        url += "/all"
    return url


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


@contextlib.contextmanager
def _b4_env(base: str, node: liblore.LoreNode) -> Iterator[None]:
    """Install our b4 configuration for the duration of a parse (b4 reads it from globals)."""
    import b4

    with _B4_LOCK:
        _quiet_libraries()
        b4.MAIN_CONFIG = _b4_config(base)
        b4.USER_CONFIG = {"name": "patchcheck", "email": "patchcheck@invalid"}
        b4.SENDEMAIL_CONFIG = {}
        # No code-review trailer searches, no patchwork: only the thread we have counts.
        b4.can_network = False
        # If some b4 path wants a node, it gets ours (never one built from ~/.gitconfig
        # with its cache under ~/.cache/b4); its own session is rebuilt on demand.
        b4.LORENODE = node
        b4.REQSESSION = None
        b4._CACHE_CLEANED = True  # never sweep the user's ~/.cache/b4
        yield


# ---- HTTP with a total deadline -----------------------------------------------------


class _Watch:
    """Total-time bound for one fetch: at the deadline every socket it opened is shut down.

    requests' timeouts bound each socket operation, not the whole answer, so a server that
    sends a byte now and then would otherwise keep us forever.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.last_ctype = ""
        self.last_head = b""
        self.last_status = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.fire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.expired = True
            for s in self._socks:
                _shutdown(s)

    def __enter__(self) -> _Watch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # shutdown (not close) wakes a blocked recv without racing fd reuse
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched_session(watch: _Watch, timeout: float) -> requests.Session:
    """A requests session whose connections report to ``watch`` and honour its deadline."""
    import b4
    import requests
    import urllib3.connection
    import urllib3.connectionpool
    from requests.adapters import HTTPAdapter

    class Conn(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watch.add(self.sock)

    class SConn(urllib3.connection.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watch.add(self.sock)

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = SConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}

        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            left = watch.remaining()
            if left <= 0 or watch.expired:
                raise requests.Timeout(f"no complete answer within {timeout:g}s")
            kwargs["timeout"] = (min(timeout, left), min(timeout, left))
            return super().send(request, *args, **kwargs)

    def remember(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        # what the last answer looked like, to explain a body that is not gzip
        watch.last_status = resp.status_code
        watch.last_ctype = resp.headers.get("Content-Type", "")
        if resp.status_code == 200:
            watch.last_head = resp.content[:512]

    session = requests.Session()
    adapter = Adapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"patchcheck/{__version__} b4/{b4.__VERSION__}"
    session.hooks["response"].append(remember)
    return session


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (requests and urllib3 nest causes in
    ``args`` and ``.reason``, not only in ``__cause__``)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        stack += [cur.__cause__, cur.__context__]
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
        stack += [a for a in cur.args if isinstance(a, BaseException)]


def _looks_html(data: bytes, ctype: str = "") -> bool:
    head = data[:512].lstrip().lower()
    return "html" in ctype.lower() or head.startswith((b"<!doctype", b"<html", b"<?xml"))


# ---- message parsing ----------------------------------------------------------------


@dataclass(frozen=True)
class _Msg:
    msgid: str
    raw: bytes
    msg: email.message.EmailMessage


@dataclass(frozen=True)
class _Thread:
    """A thread read from lore, the cache or a file, before a fix's selection."""

    key: str
    msgid: str | None
    where: str  # URL or path, for messages
    msgs: tuple[_Msg, ...]
    source: str
    fetched: str
    entry: Path | None  # cache folder, when cached
    sha256: str = ""  # of the thread's bytes: what a stored selection was derived from


def _payload_bytes(msg: email.message.EmailMessage) -> bytes:
    """The message text as bytes: the first text part, or the part carrying a diff.

    Only the transfer encoding is undone; charsets are left alone so the diff stays
    byte-exact (CRLF, Latin-1, binary patches).
    """
    best: bytes | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if "/plain" not in ctype and "/x-patch" not in ctype and "/x-diff" not in ctype:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        # prefer the first part that carries a diff (patches sent as attachments)
        if best is None or (_find_diff(best) is None and _find_diff(data) is not None):
            best = data
    return best or b""


def _find_diff(text: bytes) -> int | None:
    m = _GIT_DIFF_RE.search(text) or _PLAIN_DIFF_RE.search(text)
    return m.start() if m else None


def _cut_signature(diff: bytes) -> bytes:
    """Drop the ``-- `` mail signature after the last hunk (hunk-aware: ``-- `` is also
    a valid removed line inside a hunk)."""
    old = new = 0
    pos = 0
    size = len(diff)
    while pos < size:
        nl = diff.find(b"\n", pos)
        end = size if nl < 0 else nl + 1
        line = diff[pos:end].rstrip(b"\r\n")
        if old > 0 or new > 0:
            c = line[:1]
            if c == b"-":
                old -= 1
            elif c == b"+":
                new -= 1
            elif c != b"\\":
                old -= 1
                new -= 1
        elif line == b"-- ":
            return diff[:pos]
        else:
            m = _HUNK_RE.match(line)
            if m:
                old = int(m.group(1)) if m.group(1) is not None else 1
                new = int(m.group(2)) if m.group(2) is not None else 1
        pos = end
    return diff


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class _Facts:
    """What a patch message says about itself (trailers and mentions)."""

    fixes: tuple[str, ...]
    links: tuple[str, ...]
    cves: tuple[str, ...]
    upstream: str | None
    inbody_from: str | None


def _facts(subject: str, pre_diff: bytes) -> _Facts:
    text = pre_diff.decode("utf-8", "replace")
    upstream = None
    for rx in _UPSTREAM_RES:
        m = rx.search(text)
        if m:
            upstream = m.group(1).lower()
            break
    inbody = _INBODY_FROM_RE.search(text)
    return _Facts(
        fixes=_dedupe(_FIXES_RE.findall(text)),
        links=_dedupe(_LINK_RE.findall(text)),
        cves=_dedupe([c.upper() for c in _CVE_RE.findall(subject + "\n" + text)]),
        upstream=upstream,
        inbody_from=inbody.group(1) if inbody else None,
    )


def _split_thread(mbox: bytes, dedupe: bool) -> list[bytes]:
    import liblore.utils

    if dedupe:
        return liblore.utils.split_and_dedupe_as_bytes(mbox, list(_LISTID_PREFERENCE))
    return liblore.utils.split_mbox_as_bytes(mbox)


def _parse_msgs(raws: Sequence[bytes], synth_prefix: str | None = None) -> list[_Msg]:
    import liblore.utils

    out: list[_Msg] = []
    for n, raw in enumerate(raws):
        if not raw.strip():
            continue
        if synth_prefix is not None and not _MSGID_HDR_RE.search(raw.split(b"\n\n", 1)[0]):
            # git format-patch output has no Message-Id; b4 needs one per message
            raw = f"Message-Id: <{synth_prefix}-{n + 1}@patchcheck.invalid>\n".encode() + raw
        msg = liblore.utils.parse_message(raw)
        mid = liblore.utils.get_clean_msgid(msg)
        if mid:
            out.append(_Msg(mid, raw, msg))
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def series_key(fix: Fix) -> str:
    """Identity of the thread a fix comes from: its msgid, or ``mbox:<sha256>`` of its file."""
    if fix.mbox is not None:
        return "mbox:" + _sha256(_read_mbox_file(fix.mbox))
    if not fix.msgid:
        raise BadInput("fix has neither msgid nor mbox")
    return fix.msgid


def _read_mbox_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise BadInput(f"mbox {path}: cannot read: {e.strerror or e}") from e


def safe_name(msgid: str) -> str:
    """Folder name of a thread in the cache: readable part plus a hash (msgids may hold
    ``/``, be very long or differ only in case)."""
    readable = re.sub(r"[^A-Za-z0-9@._+-]", "_", msgid)[:80].lstrip(".") or "_"
    return f"{readable}-{_sha256(msgid.encode())[:12]}"


# ---- cache --------------------------------------------------------------------------


def _series_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "series"


def _check_entry(entry: Path, msgid: str | None) -> tuple[bytes, dict[str, Any]] | str:
    """(thread, meta) of a sound entry, else what is wrong with it."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "meta.json missing"
    except (OSError, ValueError) as e:
        return f"meta.json unreadable ({_one_line(e)})"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return "meta.json has an unknown format"
    if msgid is not None and meta.get("msgid") != msgid:
        return f"meta.json is for {meta.get('msgid')!r}, not {msgid!r}"
    try:
        data = (entry / "thread.mbox").read_bytes()
    except OSError as e:
        return f"thread.mbox unreadable ({e.strerror or e})"
    if _sha256(data) != meta.get("sha256"):
        return "thread.mbox checksum does not match meta.json"
    return data, meta


def verify_cache(cache_dir: Path) -> list[tuple[str, str]]:
    """Check every cached thread; returns (entry, problem) for each bad one."""
    sdir = _series_dir(cache_dir)
    problems: list[tuple[str, str]] = []
    if not sdir.is_dir():
        return problems
    for entry in sorted(sdir.iterdir()):
        name = entry.name
        if name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
            problems.append((name, "leftover of an interrupted fetch (never used)"))
            continue
        if not entry.is_dir():
            problems.append((name, "not a cache folder"))
            continue
        res = _check_entry(entry, None)
        if isinstance(res, str):
            problems.append((name, res))
            continue
        mid = res[1].get("msgid")
        if not isinstance(mid, str) or safe_name(mid) != name:
            problems.append((name, f"folder name does not match its msgid {mid!r}"))
    return problems


def prune_cache(cache_dir: Path, keep_keys: set[str]) -> list[str]:
    """Remove cached threads whose msgid is not in ``keep_keys``, broken entries and
    stale leftovers; returns the removed folder names."""
    sdir = _series_dir(cache_dir)
    removed: list[str] = []
    if not sdir.is_dir():
        return removed
    now = time.time()
    for entry in sorted(sdir.iterdir()):
        name = entry.name
        drop = False
        if name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
            with contextlib.suppress(OSError):
                drop = now - entry.stat().st_mtime > _TMP_GRACE_SECONDS
        elif not entry.is_dir():
            drop = True
        else:
            res = _check_entry(entry, None)
            drop = isinstance(res, str) or res[1].get("msgid") not in keep_keys
        if drop:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed.append(name)
    return removed


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# ---- the fetcher --------------------------------------------------------------------


class Fetcher:
    """Gets fix series from ``lore_url`` (or the cache, or a local mbox)."""

    def __init__(
        self, cache_dir: Path, lore_url: str = DEFAULT_LORE_URL, offline: bool = False, timeout: float = 30.0
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.lore_url = lore_url.rstrip("/")
        self.base = _archive_base(lore_url)
        self.offline = offline
        self.timeout = float(timeout)
        _quiet_libraries()  # before the first request: liblore warns on every retry
        self._node: liblore.LoreNode | None = None
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._threads: dict[str, _Thread] = {}
        # downloads in flight, so that an interrupted run (Ctrl-C) can cut them at once
        self._live: set[_Watch] = set()
        self._aborted = False

    @property
    def _b4_node(self) -> liblore.LoreNode:
        """b4 parsing never needs the network; this node exists so that b4's global points
        at our archive, not at one built from the user's git config. Built on first use:
        a run served from cached selections never loads liblore."""
        _import_libs()
        import liblore

        with self._lock:
            if self._node is None:
                self._node = liblore.LoreNode(
                    self.base, cache_dir=None, follow_upstream=False, request_timeout=(self.timeout, self.timeout)
                )
            return self._node

    # -- public API

    def get(self, fix: Fix) -> Series:
        """The fix's selected patches. Raises SeriesError (one line) when unobtainable."""
        if fix.mbox is None and fix.msgid:
            with self._lock:
                in_memory = fix.msgid in self._threads
            # a thread already parsed this run keeps answering (same source/fetched as
            # before); otherwise a stored selection spares b4 and its git patch-id calls
            if not in_memory:
                hit = self._stored_selection(fix)
                if hit is not None:
                    return hit
        return self._select(self._thread(fix), fix)

    def get_many(self, fixes: Sequence[Fix], jobs: int = 4) -> dict[str, Series | SeriesError]:
        """Fetch each distinct thread once, in parallel; keyed by ``series_key(fix)``.

        Each key maps to the Series of the first fix with that key (later fixes of the same
        thread with another selection: call ``get``, which then reads memory, not lore).
        """
        firsts: dict[str, Fix] = {}
        for fix in fixes:
            firsts.setdefault(series_key(fix), fix)
        out: dict[str, Series | SeriesError] = {}

        def one(key: str) -> tuple[str, Series | SeriesError]:
            try:
                return key, self.get(firsts[key])
            except SeriesError as e:
                return key, e

        if not firsts:
            return out
        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(firsts))))
        try:
            for key, res in pool.map(one, list(firsts)):
                out[key] = res
        except BaseException:
            # Ctrl-C (or a bug): do not sit out the network timeout of the fetches in flight
            self.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return out

    def abort(self) -> None:
        """Cut every download in flight and refuse new ones (their fixes become errors)."""
        with self._lock:
            self._aborted = True
            live = list(self._live)
        for watch in live:
            watch.fire()

    # -- threads

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _thread(self, fix: Fix) -> _Thread:
        _import_libs()
        if fix.mbox is not None:
            return self._thread_from_file(fix)
        if not fix.msgid:
            raise SeriesError("fix has neither msgid nor mbox")
        key = fix.msgid
        with self._key_lock(key):
            th = self._threads.get(key)
            if th is None:
                th = self._thread_from_lore(key)
                self._threads[key] = th
            return th

    def _thread_from_file(self, fix: Fix) -> _Thread:
        assert fix.mbox is not None
        data = _read_mbox_file(fix.mbox)
        digest = _sha256(data)
        where = str(fix.mbox)
        msgs = self._validate(data, fix.msgid, where, dedupe=False, synth=f"mbox-{digest[:12]}")
        return _Thread(f"mbox:{digest}", fix.msgid, where, tuple(msgs), "mbox", "", None, digest)

    def _thread_from_lore(self, msgid: str) -> _Thread:
        entry = _series_dir(self.cache_dir) / safe_name(msgid)
        url = self._url(msgid)
        problem: str | None = None
        if entry.is_dir():
            res = _check_entry(entry, msgid)
            if isinstance(res, str):
                problem = res
            else:
                data, meta = res
                msgs = self._validate(data, msgid, str(entry / "thread.mbox"), dedupe=True)
                return _Thread(
                    msgid,
                    msgid,
                    url,
                    tuple(msgs),
                    "cache",
                    str(meta.get("fetched", "")),
                    entry,
                    str(meta.get("sha256", "")),
                )
        if self.offline:
            if problem:
                raise SeriesError(
                    f"{msgid}: cached copy {entry} is corrupt ({problem}); cannot re-fetch (offline)"
                )
            raise SeriesError(f"{msgid}: not in cache (offline); cache folder {entry}")
        data = self._download(msgid, url)
        msgs = self._validate(data, msgid, url, dedupe=True)
        fetched = _now()
        self._store(entry, msgid, url, data, msgs, fetched)
        return _Thread(
            msgid, msgid, url, tuple(msgs), "lore", fetched, entry if entry.is_dir() else None, _sha256(data)
        )

    def _url(self, msgid: str) -> str:
        # the URL liblore requests (LoreNode._local_mbox_by_msgid)
        return f"{self.base}/{urllib.parse.quote_plus(msgid)}/t.mbox.gz"

    def _download(self, msgid: str, url: str) -> bytes:
        import liblore

        with _Watch(self.timeout) as watch:
            with self._lock:
                if self._aborted:
                    raise SeriesError(f"{url}: not fetched (interrupted)")
                self._live.add(watch)
            session = _watched_session(watch, self.timeout)
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
            except Exception as e:  # liblore lets requests/gzip errors through as they are
                raise self._fetch_error(e, msgid, url, watch) from e
            finally:
                with self._lock:
                    self._live.discard(watch)
                node.close()
                session.close()

    def _fetch_error(self, exc: Exception, msgid: str, url: str, watch: _Watch) -> SeriesError:
        import liblore
        import requests

        chain = list(_causes(exc))
        if watch.expired or any(isinstance(c, requests.Timeout | socket.timeout) for c in chain):
            return SeriesError(f"{url}: no complete answer within {self.timeout:g}s (timed out)")
        if any(isinstance(c, requests.TooManyRedirects) for c in chain):
            return SeriesError(f"{url}: too many redirects (redirect loop)")
        if any(isinstance(c, gzip.BadGzipFile | zlib.error | EOFError) for c in chain):
            if _looks_html(watch.last_head, watch.last_ctype):
                return SeriesError(
                    f"{url}: server sent an HTML page instead of a gzipped "
                    f"mbox (HTTP {watch.last_status}; a bot check or a wrong "
                    "lore URL?)"
                )
            return SeriesError(f"{url}: corrupt gzip data ({_one_line(exc)})")
        if isinstance(exc, liblore.RemoteError) and exc.status_code is not None:
            if exc.status_code == 404:
                return SeriesError(f"{msgid}: not found on {self.lore_url} (HTTP 404 for {url})")
            return SeriesError(f"{url}: server answered HTTP {exc.status_code}")
        if any(isinstance(c, ConnectionRefusedError) for c in chain):
            return SeriesError(f"{url}: cannot connect (connection refused)")
        if any(isinstance(c, socket.gaierror) for c in chain):
            return SeriesError(f"{url}: cannot connect (host name not found)")
        if any(isinstance(c, requests.ConnectionError | ConnectionError) for c in chain):
            return SeriesError(f"{url}: connection failed ({_one_line(exc)})")
        return SeriesError(f"{url}: fetch failed ({type(exc).__name__}: {_one_line(exc)})")

    def _validate(
        self, data: bytes, msgid: str | None, where: str, dedupe: bool, synth: str | None = None
    ) -> list[_Msg]:
        """Messages of the thread, or SeriesError when it cannot hold a series."""
        import b4
        import liblore.utils

        label = msgid or where
        if not data.strip():
            raise SeriesError(f"{label}: empty mbox from {where}")
        msgs = _parse_msgs(_split_thread(data, dedupe), synth)
        if not msgs:
            if _looks_html(data):
                raise SeriesError(f"{label}: {where} holds an HTML page, not an mbox")
            raise SeriesError(f"{label}: no messages in mbox from {where}")
        if msgid is not None:
            ids = {m.msgid for m in msgs}
            if msgid not in ids:
                raise SeriesError(
                    f"{msgid}: {where} returned a different thread "
                    f"({len(msgs)} messages, none with that Message-Id)"
                )
            with _b4_env(self.base, self._b4_node):
                strict = b4.get_strict_thread([m.msg for m in msgs], msgid)
            if strict:
                keep = {liblore.utils.get_clean_msgid(m) for m in strict}
                msgs = [m for m in msgs if m.msgid in keep]
        # a thread without any patch is not worth caching: say so now
        with _b4_env(self.base, self._b4_node):
            lmbx, revisions = _mailbox(msgs)
            if not revisions:
                raise SeriesError(_no_patches(label, where, msgs, lmbx))
        return msgs

    def _store(self, entry: Path, msgid: str, url: str, data: bytes, msgs: Sequence[_Msg], fetched: str) -> None:
        """Write the entry atomically; a concurrent writer's good entry wins."""
        import b4

        meta = {
            "format": CACHE_FORMAT,
            "msgid": msgid,
            "lore_url": self.lore_url,
            "url": url,
            "fetched": fetched,
            "sha256": _sha256(data),
            "size": len(data),
            "b4": b4.__VERSION__,
            "messages": self._summaries(msgs),
        }
        sdir = entry.parent
        tmp: Path | None = None
        trash: list[Path] = []
        try:
            sdir.mkdir(parents=True, exist_ok=True)
            tmp = work = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + entry.name[:40] + "-", dir=sdir))
            _write_file(work / "thread.mbox", data)
            _write_file(work / "meta.json", json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8"))
            for _attempt in range(3):
                try:
                    os.rename(work, entry)
                    tmp = None
                    return
                except OSError:
                    if not entry.exists():
                        continue
                if not isinstance(_check_entry(entry, msgid), str):
                    return  # another process stored it first: keep theirs
                # a corrupt entry: move it aside, then retry the rename
                trash.append(Path(tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=sdir)))
                with contextlib.suppress(OSError):
                    os.rename(entry, trash[-1] / "old")
        except OSError as e:
            # a cache we cannot write costs a re-fetch next time, not this result
            log.warning("cannot store %s in cache %s: %s", msgid, sdir, e.strerror or e)
        finally:
            for d in [*trash, *([tmp] if tmp is not None else [])]:
                shutil.rmtree(d, ignore_errors=True)

    def _summaries(self, msgs: Sequence[_Msg]) -> list[dict[str, Any]]:
        import b4

        out: list[dict[str, Any]] = []
        with _b4_env(self.base, self._b4_node):
            for m in msgs:
                try:
                    lm = b4.LoreMessage(m.msg)
                except ValueError:
                    continue
                payload = _payload_bytes(m.msg)
                start = _find_diff(payload)
                facts = _facts(lm.full_subject, payload if start is None else payload[:start])
                kind = "reply" if lm.reply else "patch" if lm.has_diff else "cover" if lm.counter == 0 else "other"
                out.append(
                    {
                        "msgid": m.msgid,
                        "subject": lm.full_subject,
                        "author": _author(lm, facts),
                        "date": lm.date.isoformat(),
                        "kind": kind,
                        "revision": lm.revision,
                        "counter": lm.counter,
                        "expected": lm.expected,
                        "in_reply_to": lm.in_reply_to,
                        "trailers": {
                            "fixes": list(facts.fixes),
                            "links": list(facts.links),
                            "cves": list(facts.cves),
                            "upstream": facts.upstream,
                        },
                    }
                )
        return out

    # -- selection

    def _stored_selection(self, fix: Fix) -> Series | None:
        """The fix's selection from its cache entry's selection file, or None (no sound
        entry, no file, a file for other thread bytes or that cannot be read)."""
        assert fix.msgid is not None
        entry = _series_dir(self.cache_dir) / safe_name(fix.msgid)
        path = entry / _selection_name(fix)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        res = _check_entry(entry, fix.msgid)
        if isinstance(res, str):
            return None  # the normal path reports (or re-fetches) a broken entry
        meta = res[1]
        try:
            sel = json.loads(raw)
            if (
                not isinstance(sel, dict)
                or sel.get("key") != _selection_key(fix)
                or sel.get("sha256") != meta.get("sha256")
            ):
                return None
            am = entry / str(sel["am_mbox"])
            if not am.is_file():
                return None  # rebuilt by the normal path
            count = len(sel["patches"])
            mails = tuple(_mail_from_json(p, fix, i, count) for i, p in enumerate(sel["patches"]))
            if not mails:
                return None
            return Series(
                key=fix.msgid,
                msgid=fix.msgid,
                revision=int(sel["revision"]),
                subject=str(sel["subject"]),
                patches=mails,
                source="cache",
                fetched=str(meta.get("fetched", "")),
                extra={"where": self._url(fix.msgid), "am_format": "mboxrd", "am_mbox": str(am)},
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            log.debug("ignoring unreadable selection file %s", path)
            return None  # derived data: recomputed (and rewritten) from thread.mbox

    def _store_selection(
        self, th: _Thread, fix: Fix, series: Series, facts_upstream: Sequence[str | None]
    ) -> None:
        """Write the fix's selection next to thread.mbox (atomically; failures only cost
        the b4 work again next time)."""
        if th.entry is None or th.msgid is None or "am_mbox" not in series.extra:
            return
        sel = {
            "key": _selection_key(fix),
            "sha256": th.sha256,
            "revision": series.revision,
            "subject": series.subject,
            "am_mbox": Path(series.extra["am_mbox"]).name,
            "patches": [_mail_to_json(p, up) for p, up in zip(series.patches, facts_upstream, strict=True)],
        }
        path = th.entry / _selection_name(fix)
        try:
            atomic_write(path, json.dumps(sel, ensure_ascii=False).encode("utf-8"), _TMP_PREFIX)
        except OSError as e:
            log.debug("cannot write %s: %s", path, e.strerror or e)

    def _select(self, th: _Thread, fix: Fix) -> Series:
        _import_libs()
        label = fix.msgid or th.where
        with _b4_env(self.base, self._b4_node):
            # a fresh mailbox per selection: b4's get_series mutates the mailbox
            lmbx, revisions = _mailbox(th.msgs)
            if not revisions:
                raise SeriesError(_no_patches(label, th.where, th.msgs, lmbx))
            if fix.revision is not None:
                if fix.revision not in revisions:
                    have = ", ".join(f"v{r}" for r in revisions)
                    raise SeriesError(f"{label}: revision v{fix.revision} is not in the thread (it has {have})")
                revision = fix.revision
            else:
                revision = lmbx.get_latest_revision() or revisions[-1]
            lser = lmbx.get_series(revision, codereview_trailers=False)
            if lser is None:
                raise SeriesError(f"{label}: b4 found no usable v{revision} series in the thread")
            expected = lser.expected
            wanted = sorted(fix.patches) if fix.patches else list(range(1, expected + 1))
            for n in wanted:
                if n > expected:
                    raise SeriesError(
                        f"{label}: patch {n} requested but v{revision} has "
                        f"{expected} patch{'es' if expected != 1 else ''}"
                    )
            picked: list[Any] = []
            for n in wanted:
                lmsg = lser.patches[n] if n < len(lser.patches) else None
                if lmsg is None:
                    raise SeriesError(self._missing(label, lmbx, revision, n, expected))
                picked.append(lmsg)
            cover = lser.patches[0] if lser.has_cover else None
            subject = cover.subject if cover is not None else picked[0].subject
            by_id = {m.msgid: m for m in th.msgs}
            made = [
                self._patch_mail(label, by_id[lm.msgid], lm, expected, fix, i, len(picked))
                for i, lm in enumerate(picked)
            ]
            mails = tuple(m for m, _ in made)
            extra: dict[str, str] = {"where": th.where, "am_format": "mboxrd"}
            if th.entry is not None:
                am = self._am_file(th.entry, revision, fix.patches, wanted, picked, by_id)
                if am is not None:
                    extra["am_mbox"] = str(am)
        series = Series(
            key=th.key,
            msgid=th.msgid,
            revision=revision,
            subject=subject,
            patches=mails,
            source=th.source,
            fetched=th.fetched,
            extra=extra,
        )
        self._store_selection(th, fix, series, [up for _, up in made])
        return series

    def _missing(self, label: str, lmbx: Any, revision: int, n: int, expected: int) -> str:
        # b4 files a diff-less "[PATCH 2/3]" under unknowns, or under follow-ups when it
        # carries trailers and a References header
        for lm in [*lmbx.unknowns, *lmbx.followups]:
            if lm.revision == revision and lm.counter == n and lm.lsubject.patch and not lm.lsubject.reply:
                return f"{label}: patch {n}/{expected} of v{revision} ({lm.msgid}) has no diff"
        return f"{label}: patch {n}/{expected} of v{revision} is missing from the thread"

    def _patch_mail(
        self, label: str, m: _Msg, lm: Any, expected: int, fix: Fix, index: int, count: int
    ) -> tuple[PatchMail, str | None]:
        """The patch, and the upstream id its own trailers name (kept in the stored
        selection: the bug file's ids may change without the thread changing)."""
        payload = _payload_bytes(m.msg)
        start = _find_diff(payload)
        if start is None:
            raise SeriesError(f"{label}: patch {lm.counter}/{expected} ({m.msgid}) has no diff")
        facts = _facts(lm.full_subject, payload[:start])
        return PatchMail(
            msgid=m.msgid,
            subject=lm.subject,
            author=_author(lm, facts),
            counter=lm.counter if lm.counter > 0 else 1,
            expected=expected,
            diff=_cut_signature(payload[start:]),
            upstream=_upstream_for(fix, index, count) or facts.upstream,
            fixes=facts.fixes,
            links=facts.links,
            cves=facts.cves,
        ), facts.upstream

    def _am_file(
        self,
        entry: Path,
        revision: int,
        patches: tuple[int, ...] | None,
        wanted: list[int],
        picked: list[Any],
        by_id: dict[str, _Msg],
    ) -> Path | None:
        """The selection as an mboxrd for ``git am --patch-format=mboxrd`` (derived from
        thread.mbox, so rebuilt when missing).

        The selected messages go in as received: b4's get_am_ready() would re-encode bodies
        (CRLF dropped, undecodable bytes replaced) and its serialiser is quadratic in size.
        """
        name = f"v{revision}-" + ("all" if not patches else "p" + ",".join(map(str, wanted)))
        path = entry / f"{name}.mbox"
        if path.is_file():
            return path
        buf = io.BytesIO()
        for lm in picked:
            raw = by_id[lm.msgid].raw.rstrip(b"\r\n")
            buf.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n")
            buf.write(_GTFROM_QUOTE_RE.sub(rb">\1", raw) + b"\n\n")
        try:
            atomic_write(path, buf.getvalue(), _TMP_PREFIX)
        except OSError as e:
            log.warning("cannot write %s: %s", path, e.strerror or e)
            return None
        return path


def _upstream_for(fix: Fix, index: int, count: int) -> str | None:
    """The bug file's upstream id for the index-th of count selected patches."""
    if fix.upstream and len(fix.upstream) == count:
        return fix.upstream[index]
    if fix.upstream and count == 1:
        return fix.upstream[0]
    return None


# ---- stored selections -------------------------------------------------------------

# Bumped whenever what a selection file holds, or how a selection is made, changes.
_SELECTION_FORMAT = 1


def _selection_name(fix: Fix) -> str:
    """File of a fix's selection in its cache entry (not ``*.mbox``: never an am file)."""
    rev = "latest" if fix.revision is None else f"v{fix.revision}"
    pick = "all" if not fix.patches else "p" + ",".join(map(str, sorted(fix.patches)))
    return f"sel-{rev}-{pick}.json"


def _selection_key(fix: Fix) -> dict[str, Any]:
    """What a stored selection depends on besides the thread's bytes (its sha256)."""
    return {
        "format": _SELECTION_FORMAT,
        "patchcheck": __version__,
        "revision": fix.revision,
        "patches": sorted(fix.patches) if fix.patches else None,
    }


def _mail_to_json(p: PatchMail, trailer_upstream: str | None) -> dict[str, Any]:
    return {
        "msgid": p.msgid,
        "subject": p.subject,
        "author": p.author,
        "counter": p.counter,
        "expected": p.expected,
        "diff": base64.b64encode(p.diff).decode("ascii"),
        "trailer_upstream": trailer_upstream,
        "fixes": list(p.fixes),
        "links": list(p.links),
        "cves": list(p.cves),
    }


def _strs(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TypeError("not a list of strings")
    return tuple(v)


def _mail_from_json(d: dict[str, Any], fix: Fix, index: int, count: int) -> PatchMail:
    trailer = d["trailer_upstream"]
    if trailer is not None and not isinstance(trailer, str):
        raise TypeError("trailer_upstream")
    return PatchMail(
        msgid=str(d["msgid"]),
        subject=str(d["subject"]),
        author=str(d["author"]),
        counter=int(d["counter"]),
        expected=int(d["expected"]),
        diff=base64.b64decode(d["diff"], validate=True),
        upstream=_upstream_for(fix, index, count) or trailer,
        fixes=_strs(d["fixes"]),
        links=_strs(d["links"]),
        cves=_strs(d["cves"]),
    )


def _mailbox(msgs: Sequence[_Msg]) -> tuple[Any, list[int]]:
    """b4's view of the thread, and the revisions that have at least one patch."""
    import b4

    lmbx = b4.LoreMailbox()
    for m in msgs:
        with contextlib.suppress(ValueError):  # b4 refuses messages without a Message-Id
            lmbx.add_message(m.msg)
    revisions = sorted(r for r, s in lmbx.series.items() if any(p is not None for p in s.patches[1:]))
    return lmbx, revisions


def _no_patches(label: str, where: str, msgs: Sequence[_Msg], lmbx: Any) -> str:
    for lm in [*lmbx.unknowns, *lmbx.followups]:
        if lm.lsubject.patch and not lm.lsubject.reply and lm.counter > 0:
            return f"{label}: patch {lm.counter}/{lm.expected} ({lm.msgid}) has no diff ({where})"
    return f"{label}: no patches in the thread ({len(msgs)} messages, none with a diff; {where})"


def _author(lm: Any, facts: _Facts) -> str:
    if facts.inbody_from:
        return facts.inbody_from
    name, addr = str(lm.fromname or ""), str(lm.fromemail or "")
    if name and addr and name != addr:
        return f"{name} <{addr}>"
    return addr or name
