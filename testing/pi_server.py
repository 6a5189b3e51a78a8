"""A small public-inbox-compatible HTTP server for tests (127.0.0.1, random port, threaded).

It answers what b4/liblore ask for a thread:

* ``GET /all/<msgid>/t.mbox.gz`` (and ``/<list>/<msgid>/t.mbox.gz``): the gzipped thread;
* ``HEAD|GET /<msgid>/`` and ``/all/<msgid>/``: 302 to ``/all/<msgid>/`` when known
  (liblore's "where does this message live" probe after a 404), 404 otherwise;
* ``GET /all/<msgid>/raw``: the one message.

``fault`` switches every answer to a failure mode: "500", "html200", "corrupt-gzip",
"hang" (accept, never answer), "drip" (headers, then a byte now and then), "redirect-loop",
"close-kept" (a request on a kept-alive connection gets the connection closed, no answer: a
server closing an idle connection as the client reuses it);
and hostile ones: "redirect" (302 to ``redirect_to`` + ``/moved`` + the path; any server
serves ``/moved/<path>`` as ``<path>``), "endless" (200, no length, bytes until the client
goes away), "body" (200 with ``body`` as a gzipped thread, e.g. a gzip bomb).
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_MSGID_HDR = re.compile(rb"^message-id:\s*<([^>]+)>", re.I | re.M)
_FROM_LINE = re.compile(rb"^From \S+.*\d\d:\d\d:\d\d.*\d{4}", re.M)

FAULTS = (
    "500",
    "html200",
    "corrupt-gzip",
    "hang",
    "drip",
    "redirect-loop",
    "close-kept",
    "redirect",
    "endless",
    "body",
)
_MOVED = "/moved"


def _split_messages(mbox: bytes) -> list[bytes]:
    starts = [m.start() for m in _FROM_LINE.finditer(mbox)]
    if not starts:
        return [mbox] if mbox.strip() else []
    return [mbox[a:b] for a, b in zip(starts, [*starts[1:], len(mbox)], strict=True)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: PIServer

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        with self.owner._lock:
            self.owner.connections += 1
        # without it every small reply waits for the peer's delayed ACK (~40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # connections are kept alive
    served = 0  # requests on this connection (one handler per connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _send(
        self,
        code: int,
        body: bytes,
        ctype: str = "text/plain",
        head: bool = False,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        path = self.path
        self.served += 1
        with owner._lock:
            owner.requests.append(path)
            fault = owner.fault
            delay = owner.delay
        if delay:
            owner._stop.wait(delay)
        moved = path.startswith(_MOVED + "/")
        if moved:
            path = path[len(_MOVED) :]
        elif fault is not None and self._fault(fault, head):
            return
        parts = [urllib.parse.unquote(p) for p in path.split("?")[0].split("/") if p]
        msgid, tail, listname = self._parse(parts)
        with owner._lock:
            mbox = owner._threads.get(msgid) if msgid else None
            raw = owner._messages.get(msgid) if msgid else None
        if mbox is None:
            self._send(404, b"404 Not Found\n", head=head)
            return
        if tail == "t.mbox.gz":
            self._send(200, owner._gzipped(mbox), "application/gzip", head)
        elif tail == "raw" and raw is not None:
            self._send(200, raw, "text/plain; charset=utf-8", head)
        elif tail == "" and listname != "all":
            quoted = urllib.parse.quote(msgid, safe="@")
            self._send(302, b"", head=head, headers=[("Location", f"/all/{quoted}/")])
        elif tail == "":
            self._send(200, b"<html><body>thread</body></html>", "text/html", head)
        else:
            self._send(404, b"404 Not Found\n", head=head)

    @staticmethod
    def _parse(parts: list[str]) -> tuple[str | None, str, str | None]:
        # /<msgid>/..., /<list>/<msgid>/...
        for i, p in enumerate(parts[:2]):
            if "@" in p:
                listname = parts[0] if i == 1 else None
                return p, "/".join(parts[i + 1 :]), listname
        return None, "", None

    def _fault(self, fault: str, head: bool) -> bool:
        owner = self.server.owner
        if fault == "500":
            self._send(500, b"Internal Server Error\n", head=head)
        elif fault == "html200":
            page = (
                b"<!doctype html><html><head><title>Checking your browser</title></head>"
                b"<body>Please wait</body></html>\n"
            )
            self._send(200, page, "text/html; charset=utf-8", head)
        elif fault == "corrupt-gzip":
            good = gzip.compress(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" * 50)
            bad = good[:10] + bytes(b ^ 0x5A for b in good[10:40]) + good[40:-8]
            self._send(200, bad, "application/gzip", head)
        elif fault == "hang":
            owner._stop.wait(owner.fault_seconds)
            self.close_connection = True
        elif fault == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.flush()
            deadline = time.monotonic() + owner.fault_seconds
            try:
                while time.monotonic() < deadline and not owner._stop.is_set():
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    owner._stop.wait(owner.drip_interval)
            except OSError:
                pass
            self.close_connection = True
        elif fault == "close-kept":
            if self.served == 1:
                return False
            self.close_connection = True
        elif fault == "redirect-loop":
            self._send(302, b"", head=head, headers=[("Location", self.path)])
        elif fault == "redirect":
            target = (owner.redirect_to or owner.url) + _MOVED + self.path
            self._send(302, b"", head=head, headers=[("Location", target)])
        elif fault == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\x1f\x8b" + bytes(1 << 20)
            deadline = time.monotonic() + owner.fault_seconds
            try:
                while not head and time.monotonic() < deadline and not owner._stop.is_set():
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif fault == "body":
            self._send(200, owner.body, "application/gzip", head)
        else:
            return False
        return True


class PIServer:
    """Serve threads like a public-inbox instance. ``url`` has no trailing slash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, bytes] = {}
        self._gz: dict[bytes, bytes] = {}  # each thread compressed once (the bench asks 1,819 of them)
        self._messages: dict[str, bytes] = {}
        self._stop = threading.Event()
        self.requests: list[str] = []
        self.connections = 0  # TCP connections accepted
        self.fault: str | None = None
        self.fault_seconds = 60.0  # how long "hang" and "drip" keep a connection
        self.drip_interval = 0.2
        self.delay = 0.0  # seconds every answer waits (to see parallel fetches overlap)
        self.redirect_to: str | None = None  # origin the "redirect" fault sends clients to
        self.body = b""  # what the "body" fault answers
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def add_thread(self, mbox: bytes, msgids: Iterable[str] | None = None) -> None:
        """Serve ``mbox`` as the thread of each message in it (or of each of ``msgids``)."""
        msgs = _split_messages(mbox)
        found: dict[str, bytes] = {}
        for m in msgs:
            hit = _MSGID_HDR.search(m.split(b"\n\n", 1)[0])
            if hit:
                found[hit.group(1).decode("ascii", "replace")] = m
        ids = list(msgids) if msgids is not None else list(found)
        with self._lock:
            for mid in ids:
                self._threads[mid] = mbox
            self._messages.update(found)

    def _gzipped(self, mbox: bytes) -> bytes:
        with self._lock:
            gz = self._gz.get(mbox)
        if gz is None:
            gz = gzip.compress(mbox)
            with self._lock:
                self._gz[mbox] = gz
        return gz

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PIServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
