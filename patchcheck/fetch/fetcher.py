"""Fetch stage: obtain a fix's patch series from a public-inbox archive (or a local mbox).

Threads are fetched by Message-Id with liblore (b4's transport) and taken apart with b4's
own classes, in-process, through b4shim. The cache (fetch/cache.py) keeps each thread as
fetched, and each fix's selection from it, so a warm run needs neither network nor b4.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from patchcheck import __version__
from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch import b4shim, cache
from patchcheck.fetch.http import Downloads, Watch, archive_base, connection_dropped, fetch_error, looks_html
from patchcheck.fetch.limits import MBOX_BYTES, THREAD_MAILS, Limits
from patchcheck.fetch.mail import sha256
from patchcheck.fetch.select import Selection, no_patches, select
from patchcheck.fetch.upstream import UpstreamRepo, corroborate, series_from_clone
from patchcheck.model import Fix, Series
from patchcheck.sys import progress
from patchcheck.sys.paths import NotRegular, TooLarge, read_regular


@dataclass(frozen=True)
class _Thread:
    """A thread read from lore, the cache or a file, before a fix's selection."""

    key: str
    msgid: str | None
    where: str  # URL or path, for messages
    parsed: b4shim.Parsed  # its messages, as b4 read them
    source: str
    fetched: str
    entry: Path | None  # cache folder, when cached
    sha256: str = ""  # of the thread's bytes: what a stored selection was derived from
    signature: list[int] | None = None  # the cache entry's, when it was found to hold them


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_mbox_file(path: Path, limit: int) -> bytes:
    """A local ``mbox =`` file: a regular file (never a FIFO or a device) within the limit."""
    try:
        return read_regular(path, limit)
    except NotRegular:
        raise BadInput(f"mbox {path}: not a regular file (expected an mbox file)") from None
    except TooLarge:
        raise BadInput(f"mbox {path}: file {MBOX_BYTES.breach(limit)}") from None
    except OSError as e:
        raise BadInput(f"mbox {path}: cannot read: {e.strerror or e}") from e


def series_key(fix: Fix, limits: Limits | None = None) -> str:
    """Identity of the thread a fix comes from: its msgid, ``mbox:<sha256>`` of its file, or
    ``upstream:<ids>`` for a fix given by upstream commits alone."""
    if fix.mbox is not None:
        return "mbox:" + sha256(_read_mbox_file(fix.mbox, (limits or Limits()).mbox_bytes))
    if not fix.msgid and fix.upstream:
        return "upstream:" + ",".join(fix.upstream)
    if not fix.msgid:
        raise BadInput("fix has neither msgid nor mbox")
    return fix.msgid


class Fetcher:
    """Gets fix series from ``lore_url`` (or the cache, or a local mbox)."""

    def __init__(
        self,
        cache_dir: Path,
        lore_url: str,  # no default: the caller says which archive (config.lore_url)
        offline: bool = False,
        timeout: float = 30.0,
        limits: Limits | None = None,
        upstream: UpstreamRepo | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.limits = limits or Limits()
        self.lore_url = lore_url.rstrip("/")
        self.base = archive_base(lore_url)
        self.offline = offline
        self.timeout = float(timeout)
        b4shim.quiet()  # before the first request: liblore warns on every retry
        self._b4 = b4shim.B4(self.base, self.timeout)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._threads: dict[str, _Thread] = {}
        self._mbox_keys: dict[Path, str] = {}  # each mbox fix's series key, its file read once
        # downloads in flight, so that an interrupted run (Ctrl-C) can cut them at once
        self._live: set[Watch] = set()
        self._local = threading.local()  # each thread's Downloads
        self._aborted = False
        # msgid -> why its thread, fetched this run, could not be stored in the cache
        self.unstored: dict[str, str] = {}
        self.upstream = upstream  # a local clone: fixes given by upstream ids, corroboration

    # -- public API

    def series_key(self, fix: Fix) -> str:
        """``series_key`` under this fetcher's limits; an mbox file is read and hashed once
        per run for it (the stages all ask for the key)."""
        if fix.mbox is None:
            return series_key(fix, self.limits)
        with self._lock:
            key = self._mbox_keys.get(fix.mbox)
        if key is None:
            key = series_key(fix, self.limits)
            with self._lock:
                self._mbox_keys[fix.mbox] = key
        return key

    def get(self, fix: Fix) -> Series:
        """The fix's selected patches. Raises SeriesError (one line) when unobtainable.

        A fix given by upstream commits alone is taken from the upstream clone; one with a
        mail too keeps the mail, and the clone's commit corroborates it."""
        if fix.mbox is None and not fix.msgid and fix.upstream:
            return series_from_clone(self.upstream, fix)
        series = self._get(fix)
        return corroborate(self.upstream, series) if self.upstream is not None else series

    def _get(self, fix: Fix) -> Series:
        if fix.mbox is None and fix.msgid:
            with self._lock:
                in_memory = fix.msgid in self._threads
            # a thread already parsed this run keeps answering (same source/fetched as
            # before); otherwise a stored selection spares b4 and its git patch-id calls
            if not in_memory:
                hit = cache.read_selection(self.cache_dir, fix)
                if hit is not None:
                    return Series(
                        key=fix.msgid,
                        msgid=fix.msgid,
                        revision=hit.revision,
                        subject=hit.subject,
                        patches=hit.patches,
                        source="cache",
                        fetched=hit.fetched,
                        extra={"where": self._url(fix.msgid), "am_format": "mboxrd", "am_mbox": str(hit.am_mbox)},
                        note=hit.note,
                    )
        return self._select(self._thread(fix), fix)

    def get_many(self, fixes: Sequence[Fix], jobs: int = 4) -> dict[str, Series | SeriesError]:
        """Fetch each distinct thread once, in parallel; keyed by ``series_key(fix)``.

        Each key maps to the Series of the first fix with that key (later fixes of the same
        thread with another selection: call ``get``, which then reads memory, not lore).
        """
        firsts: dict[str, Fix] = {}
        for fix in fixes:
            firsts.setdefault(self.series_key(fix), fix)
        out: dict[str, Series | SeriesError] = {}
        if not firsts:
            return out
        shown = progress.task("fetching series", len(firsts))

        def one(key: str) -> tuple[str, Series | SeriesError]:
            try:
                return key, self.get(firsts[key])
            except SeriesError as e:
                return key, e
            finally:
                shown.advance()

        if jobs <= 1 or len(firsts) == 1:
            # one at a time: a pool of one thread would only add a hand-over per thread
            # (~0.1 ms each: a tenth of a warm one-process audit)
            with shown:
                return dict(map(one, firsts))
        pool = ThreadPoolExecutor(max_workers=min(jobs, len(firsts)))
        try:
            with shown:
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
        b4shim.load()
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
        data = _read_mbox_file(fix.mbox, self.limits.mbox_bytes)
        digest = sha256(data)
        where = str(fix.mbox)
        parsed = self._validate(data, fix.msgid, where, dedupe=False, synth=f"mbox-{digest[:12]}")
        return _Thread(f"mbox:{digest}", fix.msgid, where, parsed, "mbox", "", None, digest)

    def _thread_from_lore(self, msgid: str) -> _Thread:
        entry = cache.entry_dir(self.cache_dir, msgid)
        url = self._url(msgid)
        problem: str | None = None
        if entry.is_dir():
            held = cache.signature(entry)  # before the check: a change after it shows later
            res = cache.check_entry(entry, msgid, self.limits.thread_bytes)
            if isinstance(res, str):
                problem = res
            else:
                data, meta = res
                parsed = self._validate(data, msgid, str(entry / "thread.mbox"), dedupe=True)
                fetched, digest = str(meta.get("fetched", "")), str(meta.get("sha256", ""))
                return _Thread(msgid, msgid, url, parsed, "cache", fetched, entry, digest, held)
        if self.offline:
            miss = SeriesError.NOT_CACHED
            if problem:
                raise SeriesError(
                    f"{msgid}: cached copy {entry} is corrupt ({problem}); cannot re-fetch (offline)", reason=miss
                )
            raise SeriesError(f"{msgid}: not in cache (offline); cache folder {entry}", reason=miss)
        data = self._download(msgid, url)
        parsed = self._validate(data, msgid, url, dedupe=True)
        fetched, digest = _now(), sha256(data)
        meta = {
            "format": cache.CACHE_FORMAT,
            "msgid": msgid,
            "lore_url": self.lore_url,
            "url": url,
            "fetched": fetched,
            "sha256": digest,
            "size": len(data),
            "b4": b4shim.version(),
            "messages": cache.summaries(self._b4.infos(parsed)),
        }
        why = cache.store_entry(entry, msgid, data, meta)
        if why is not None:
            with self._lock:
                self.unstored[msgid] = why
        if not entry.is_dir():
            return _Thread(msgid, msgid, url, parsed, "lore", fetched, None, digest)
        # another process may have stored the thread first: the entry is ours only if it
        # holds these bytes
        return _Thread(
            msgid, msgid, url, parsed, "lore", fetched, entry, digest, cache.held_signature(entry, digest)
        )

    def _url(self, msgid: str) -> str:
        # the URL liblore requests (LoreNode._local_mbox_by_msgid)
        return f"{self.base}/{urllib.parse.quote_plus(msgid)}/t.mbox.gz"

    def _download(self, msgid: str, url: str) -> bytes:
        with Watch(self.timeout) as watch:
            with self._lock:
                if self._aborted:
                    raise SeriesError(f"{url}: not fetched (interrupted)")
                self._live.add(watch)
            downloads = self._downloads()
            try:
                try:
                    kept = downloads.kept_alive
                    with downloads.session(watch) as session:
                        return self._b4.download(msgid, session)
                except Exception as e:
                    # the server may close an idle kept-alive connection just as we reuse
                    # it: that one failure is retried once, on a new connection
                    if not (kept and connection_dropped(e, watch)):
                        raise
                with downloads.session(watch) as session:
                    return self._b4.download(msgid, session)
            except Exception as e:  # liblore lets requests/gzip errors through as they are
                raise fetch_error(e, msgid, url, self.lore_url, watch) from e
            finally:
                with self._lock:
                    self._live.discard(watch)

    def _downloads(self) -> Downloads:
        """This thread's downloads (a requests session is no thing to share between threads)."""
        downloads: Downloads | None = getattr(self._local, "downloads", None)
        if downloads is None:
            agent = f"patchcheck/{__version__} b4/{b4shim.version()}"
            downloads = self._local.downloads = Downloads(self.timeout, agent, self.base, self.limits)
        return downloads

    def _validate(
        self, data: bytes, msgid: str | None, where: str, dedupe: bool, synth: str | None = None
    ) -> b4shim.Parsed:
        """The thread as b4 reads it, or SeriesError when it cannot hold a series."""
        label = msgid or where
        if not data.strip():
            raise SeriesError(f"{label}: empty mbox from {where}")
        raws = b4shim.split_thread(data, dedupe)
        if len(raws) > self.limits.thread_mails:
            raise SeriesError(
                f"{label}: thread of {len(raws)} mails {THREAD_MAILS.breach(self.limits.thread_mails)} ({where})"
            )
        msgs = b4shim.parse_msgs(raws, synth)
        if not msgs:
            if looks_html(data):
                raise SeriesError(f"{label}: {where} holds an HTML page, not an mbox")
            raise SeriesError(f"{label}: no messages in mbox from {where}")
        if msgid is not None:
            if msgid not in {m.msgid for m in msgs}:
                raise SeriesError(
                    f"{msgid}: {where} returned a different thread "
                    f"({len(msgs)} messages, none with that Message-Id)"
                )
            keep = self._b4.strict_ids(msgs, msgid)
            if keep is not None:
                msgs = [m for m in msgs if m.msgid in keep]
        # a thread without any patch is not worth caching: say so now
        parsed = self._b4.parse(msgs)
        if not parsed.revisions:
            raise SeriesError(no_patches(label, where, len(msgs), parsed.loose))
        return parsed

    # -- selection

    def derive(self, fix: Fix) -> Selection:
        """The fix's selection made afresh from its thread by b4, never read from a stored
        selection (what ``cache verify`` holds a stored one against); nothing is written."""
        th = self._thread(fix)
        return select(self._b4, th.parsed, fix, fix.msgid or th.where, th.where)

    def _select(self, th: _Thread, fix: Fix) -> Series:
        sel = select(self._b4, th.parsed, fix, fix.msgid or th.where, th.where)
        extra: dict[str, str] = {"where": th.where, "am_format": "mboxrd"}
        am = cache.write_am(th.entry, sel) if th.entry is not None else None
        if am is not None:
            extra["am_mbox"] = str(am)
            if th.msgid is not None:
                assert th.entry is not None
                cache.write_selection(th.entry, th.sha256, th.signature, th.fetched, fix, sel, am)
        return Series(
            key=th.key,
            msgid=th.msgid,
            revision=sel.revision,
            subject=sel.subject,
            patches=sel.patches,
            source=th.source,
            fetched=th.fetched,
            extra=extra,
            note=sel.note,
        )
