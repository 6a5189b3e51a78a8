"""HTTP for the fetch stage: a total deadline per download, bounded answers, redirects
that stay on the archive's origin, one-line errors, and one kept-alive connection per thread.

requests is imported where it is used: a warm run served from the cache never needs it.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import itertools
import os
import socket
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch.limits import ANSWER_BYTES, THREAD_BYTES, Limits

if TYPE_CHECKING:
    import requests


class HttpStatus(Exception):
    """The archive answered with an HTTP error status (raised by b4shim for liblore's)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server answered HTTP {status}")
        self.status = status


class Refused(Exception):
    """An answer we will not take: too large, or a redirect to another origin."""


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, the port filled in."""
    p = urllib.parse.urlsplit(url)
    scheme = p.scheme.lower()
    try:
        port = p.port
    except ValueError:
        port = None
    return scheme, (p.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def check_gunzip(data: bytes, limit: int) -> None:
    """Refused when the gzip ``data`` (one or more members, as ``gzip.decompress`` reads
    them) holds more than ``limit`` bytes; decompressed piecewise and thrown away, so a
    bomb costs time, not memory. zlib.error or EOFError for data that is not sound gzip."""
    total = 0
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        buf = rest
        while buf and not d.eof:
            total += len(d.decompress(buf, 1 << 20))
            if total > limit:
                raise Refused(f"decompressed thread {THREAD_BYTES.breach(limit)}")
            buf = d.unconsumed_tail
        if not d.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        rest = d.unused_data.lstrip(b"\x00")


def _read_body(resp: requests.Response, limit: int) -> bytes:
    """The whole body, or Refused once it passes ``limit`` bytes (declared or received)."""
    if resp.request.method == "HEAD":
        return b""  # its Content-Length is the GET's
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        resp.close()
        raise Refused(f"answer of {declared} bytes {ANSWER_BYTES.breach(limit)}")
    buf = bytearray()
    for chunk in resp.iter_content(1 << 16):
        buf += chunk
        if len(buf) > limit:
            resp.close()
            raise Refused(f"answer {ANSWER_BYTES.breach(limit)}")
    return bytes(buf)


def archive_base(lore_url: str) -> str:
    """``https://lore.kernel.org`` -> ``https://lore.kernel.org/all`` (a list path is kept)."""
    url = lore_url.strip().rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadInput(f"lore URL {lore_url!r} is not an http(s) URL")
    if not parsed.path or parsed.path == "/":
        url += "/all"
    return url


class Watch:
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
        self.done = False  # the fetch is over: firing now touches nothing

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.done:
                return
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.expired = True
            for s in self._socks:
                _shutdown(s)

    def __enter__(self) -> Watch:
        _watchdog.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        # a kept-alive connection outlives the fetch: a late fire must not cut it
        with self._lock:
            self.done = True
            self._socks.clear()


class _Watchdog:
    """One thread fires each Watch at its deadline (a Timer thread per fetch cost more CPU
    than the rest of a download's bookkeeping, and its start waits for the scheduler). A
    finished Watch stays queued until its deadline, then is dropped unfired."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Watch]] = []  # a heap, by deadline
        self._count = itertools.count()  # ties never compare Watches
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            heapq.heappush(self._queue, (watch.deadline, next(self._count), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="patchcheck-watchdog", daemon=True)
                self._thread.start()
            elif self._queue[0][2] is watch:
                self._cond.notify()  # it sleeps until a later deadline

    def _run(self) -> None:
        while True:
            due: list[Watch] = []
            with self._cond:
                now = time.monotonic()
                while self._queue and self._queue[0][0] <= now:
                    due.append(heapq.heappop(self._queue)[2])
                if not due:
                    self._cond.wait(self._queue[0][0] - now if self._queue else None)
            for watch in due:
                if not watch.done:
                    watch.fire()


_watchdog = _Watchdog()


def _new_watchdog() -> None:
    # a forked child has no watchdog thread (and its lock may be held by a thread that is
    # not there): it starts its own
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog)


def _shutdown(sock: socket.socket) -> None:
    # shutdown (not close) wakes a blocked recv without racing fd reuse
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Current:
    """The Watch of the download a kept-alive session is serving (None between downloads)."""

    watch: Watch | None = None

    def get(self) -> Watch:
        if self.watch is None:
            raise RuntimeError("a request outside of a download")
        return self.watch


def _watched_session(
    current: _Current, timeout: float, user_agent: str, base: str, limits: Limits
) -> requests.Session:
    """A requests session whose connections report to the current download's Watch and
    honour its deadline, whose answers are read within ``limits``, and which follows
    redirects only within the origin of ``base`` (a few of them)."""
    import requests
    import urllib3.connection
    import urllib3.connectionpool
    from requests.adapters import HTTPAdapter

    # A connection reports its socket when it connects, and again with each request: a
    # kept-alive one serves later downloads, each with its own Watch.
    class Conn(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            current.get().add(self.sock)

        def request(self, *args: Any, **kwargs: Any) -> None:
            current.get().add(self.sock)
            super().request(*args, **kwargs)

    class SConn(Conn, urllib3.connection.HTTPSConnection):  # the same, over TLS
        pass

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = SConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}

        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            watch = current.get()
            left = watch.remaining()
            if left <= 0 or watch.expired:
                raise requests.Timeout(f"no complete answer within {timeout:g}s")
            kwargs["timeout"] = (min(timeout, left), min(timeout, left))
            return super().send(request, *args, **kwargs)

    home = origin(base)

    env_settings: dict[tuple[tuple[str, str, int], bool | None], Any] = {}

    class Session(requests.Session):
        def merge_environment_settings(
            self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            # requests reads the environment (proxies, no_proxy, CA bundle) on every request,
            # scanning all of os.environ twice: the session reads it once per origin
            if proxies or verify is not None or cert is not None or not isinstance(url, str):
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            key = (origin(url), stream)
            if key not in env_settings:
                env_settings[key] = super().merge_environment_settings(url, {}, stream, None, None)
            got = env_settings[key]
            return {**got, "proxies": dict(got["proxies"])}

        def get_redirect_target(self, resp: requests.Response) -> str | None:
            target = super().get_redirect_target(resp)
            if target is not None:
                to = urllib.parse.urljoin(resp.url, target)
                if origin(to) != home:
                    raise Refused(f"redirect to another origin refused ({resp.url} -> {to})")
            return target

    def bounded(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        watch = current.get()
        # the body is read here, within the limit, before requests or liblore read it whole
        resp._content = _read_body(resp, limits.answer_bytes)  # read to the end: requests marks it consumed
        # what the last answer looked like, to explain a body that is not gzip
        watch.last_status = resp.status_code
        watch.last_ctype = resp.headers.get("Content-Type", "")
        if resp.status_code == 200:
            watch.last_head = resp._content[:512]
            if resp._content[:2] == b"\x1f\x8b":
                # liblore gunzips it whole: first make sure that stays within the limit
                check_gunzip(resp._content, limits.thread_bytes)

    session = Session()
    session.max_redirects = 5
    adapter = Adapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    session.hooks["response"].append(bounded)
    return session


class Downloads:
    """One thread's downloads, one at a time, over one kept-alive session, each bounded by
    its own Watch: a session (a TCP connect, a TLS handshake) per series was a third of the
    CPU of fetching a one-patch series. A session that saw a download fail is dropped (a
    Watch may have cut its connections, an answer may be half read); one inherited across a
    fork is dropped unclosed (the parent may still use the connection)."""

    def __init__(self, timeout: float, user_agent: str, base: str, limits: Limits) -> None:
        self._args = (timeout, user_agent, base, limits)
        self._current = _Current()
        self._session: requests.Session | None = None
        self._pid = os.getpid()
        self.kept_alive = False  # the session has served a download: it may hold an open connection

    @contextlib.contextmanager
    def session(self, watch: Watch) -> Iterator[requests.Session]:
        """The session, for one download under ``watch``."""
        if self._pid != os.getpid():
            self._session, self._pid = None, os.getpid()
        if self._session is None:
            self._session = _watched_session(self._current, *self._args)
            self.kept_alive = False
        self._current.watch = watch
        try:
            yield self._session
        except BaseException:
            self.close()
            raise
        finally:
            self._current.watch = None
        self.kept_alive = True

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self.kept_alive = False


def one_line(text: object) -> str:
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


def connection_dropped(exc: BaseException, watch: Watch) -> bool:
    """The connection failed (reset, closed before the answer), in time and for no other
    reason: what a kept-alive connection that the server closed meanwhile gives."""
    import requests

    chain = list(_causes(exc))
    if watch.expired or any(isinstance(c, Refused | requests.Timeout | socket.timeout) for c in chain):
        return False
    return any(isinstance(c, requests.ConnectionError | ConnectionError) for c in chain)


def looks_html(data: bytes, ctype: str = "") -> bool:
    head = data[:512].lstrip().lower()
    return "html" in ctype.lower() or head.startswith((b"<!doctype", b"<html", b"<?xml"))


def fetch_error(exc: Exception, msgid: str, url: str, lore_url: str, watch: Watch) -> SeriesError:
    """The one-line SeriesError for a failed download of ``url``."""
    import requests

    chain = list(_causes(exc))
    for c in chain:
        if isinstance(c, Refused):
            return SeriesError(f"{url}: {c}")
    gone = SeriesError.UNREACHABLE  # the archive did not answer: what a mirror or the cache helps with
    if watch.expired or any(isinstance(c, requests.Timeout | socket.timeout) for c in chain):
        return SeriesError(f"{url}: no complete answer within {watch.seconds:g}s (timed out)", reason=gone)
    if any(isinstance(c, requests.TooManyRedirects) for c in chain):
        return SeriesError(f"{url}: too many redirects (redirect loop)")
    if any(isinstance(c, gzip.BadGzipFile | zlib.error | EOFError) for c in chain):
        if looks_html(watch.last_head, watch.last_ctype):
            return SeriesError(
                f"{url}: server sent an HTML page instead of a gzipped "
                f"mbox (HTTP {watch.last_status}; a bot check or a wrong "
                "lore URL?)",
                reason=gone,
            )
        return SeriesError(f"{url}: corrupt gzip data ({one_line(exc)})")
    if isinstance(exc, HttpStatus):
        if exc.status == 404:
            return SeriesError(f"{msgid}: not found on {lore_url} (HTTP 404 for {url})")
        busy = exc.status >= 500 or exc.status == 429
        return SeriesError(f"{url}: server answered HTTP {exc.status}", reason=gone if busy else None)
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return SeriesError(f"{url}: cannot connect (connection refused)", reason=gone)
    if any(isinstance(c, socket.gaierror) for c in chain):
        return SeriesError(f"{url}: cannot connect (host name not found)", reason=gone)
    if any(isinstance(c, requests.ConnectionError | ConnectionError) for c in chain):
        return SeriesError(f"{url}: connection failed ({one_line(exc)})", reason=gone)
    return SeriesError(f"{url}: fetch failed ({type(exc).__name__}: {one_line(exc)})")
