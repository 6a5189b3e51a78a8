"""The series cache: one folder per thread, written whole or not at all.

Layout (``cache_dir/series/<safe msgid>/``)::

    thread.mbox        the thread exactly as fetched (decompressed)
    meta.json          msgid, lore_url, fetch time, sha256 of thread.mbox, message summaries
    v2-p1,3.mbox       the selected messages as received, mboxrd (``git am
                       --patch-format=mboxrd``); derived, rebuilt when missing; v2-all.mbox
                       when the fix takes every patch
    sel-v2-p1,3.json   a fix's selection (its sha256, then as JSON the PatchMail fields,
                       diffs in base64), tied to the sha256 of thread.mbox and the entry's
                       stat signature; derived like the am file: a warm run builds the
                       Series from it without b4 (re-checking the entry only when its
                       signature changed), and a damaged or stale one is ignored and
                       rewritten. sel-latest-all.json: no revision pinned

An entry is written into ``series/.tmp-*`` and renamed into place whole, so an interrupted
fetch never leaves an entry that a later run trusts (nor does a machine crash: see _write_file).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchcheck import __version__
from patchcheck.fetch.b4shim import MailInfo
from patchcheck.fetch.http import one_line
from patchcheck.fetch.limits import THREAD_BYTES
from patchcheck.fetch.mail import Msg, author, mboxrd, message_facts, sha256
from patchcheck.fetch.select import Selection, upstream_for
from patchcheck.model import Fix, PatchMail
from patchcheck.sys.atomic import atomic_write
from patchcheck.sys.paths import NotRegular, TooLarge, read_regular

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
# A temp folder younger than this may belong to a fetch still writing it.
_TMP_GRACE_SECONDS = 60.0
# Bumped whenever what a selection file holds, or how a selection is made, changes.
# 2: per-fix selections checked by verify; 3: each patch's date and body; 4: the entry's signature
_SELECTION_FORMAT = 4

Meta = dict[str, Any]  # meta.json, as JSON


def safe_name(msgid: str) -> str:
    """Folder name of a thread in the cache: readable part plus a hash (msgids may hold
    ``/``, be very long or differ only in case)."""
    readable = re.sub(r"[^A-Za-z0-9@._+-]", "_", msgid)[:80].lstrip(".") or "_"
    return f"{readable}-{sha256(msgid.encode())[:12]}"


def series_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "series"


def entry_dir(cache_dir: Path, msgid: str) -> Path:
    return series_dir(cache_dir) / safe_name(msgid)


def check_entry(entry: Path, msgid: str | None, limit: int = THREAD_BYTES.default) -> tuple[bytes, Meta] | str:
    """(thread, meta) of a sound entry, else what is wrong with it (a thread.mbox of more
    than ``limit`` bytes is not read)."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "meta.json missing"
    except (OSError, ValueError) as e:
        return f"meta.json unreadable ({one_line(e)})"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return "meta.json has an unknown format"
    if msgid is not None and meta.get("msgid") != msgid:
        return f"meta.json is for {meta.get('msgid')!r}, not {msgid!r}"
    try:
        data = read_regular(entry / "thread.mbox", limit)
    except TooLarge:
        return f"thread.mbox {THREAD_BYTES.breach(limit)}"
    except NotRegular:
        return "thread.mbox is not a regular file"
    except OSError as e:
        return f"thread.mbox unreadable ({e.strerror or e})"
    if sha256(data) != meta.get("sha256"):
        return "thread.mbox checksum does not match meta.json"
    return data, meta


def verify_cache(cache_dir: Path) -> list[tuple[str, str]]:
    """Check every cached thread; returns (entry, problem) for each bad one."""
    sdir = series_dir(cache_dir)
    problems: list[tuple[str, str]] = []
    if not sdir.is_dir():
        return problems
    for entry in sorted(sdir.iterdir()):
        name = entry.name
        if name.startswith((TMP_PREFIX, _TRASH_PREFIX)):
            problems.append((name, "leftover of an interrupted fetch (never used)"))
            continue
        if not entry.is_dir():
            problems.append((name, "not a cache folder"))
            continue
        res = check_entry(entry, None)
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
    sdir = series_dir(cache_dir)
    removed: list[str] = []
    if not sdir.is_dir():
        return removed
    now = time.time()
    for entry in sorted(sdir.iterdir()):
        name = entry.name
        drop = False
        if name.startswith((TMP_PREFIX, _TRASH_PREFIX)):
            with contextlib.suppress(OSError):
                drop = now - entry.stat().st_mtime > _TMP_GRACE_SECONDS
        elif not entry.is_dir():
            drop = True
        else:
            res = check_entry(entry, None)
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
    # No fsync: an entry is renamed into place whole (a killed run leaves none), and one that
    # a crash of the machine tears (an empty or short file after the rename) fails its
    # sha256 or meta.json check, so it is re-fetched or reported, never trusted. Two fsyncs
    # per entry cost more than the rest of storing it, and stall other writers.
    with open(path, "wb") as fh:
        fh.write(data)


def summaries(infos: Sequence[tuple[Msg, MailInfo]]) -> list[dict[str, Any]]:
    """What meta.json says about each message of the thread."""
    out: list[dict[str, Any]] = []
    for m, lm in infos:
        f, _ = message_facts(m, lm.full_subject)
        kind = "reply" if lm.reply else "patch" if lm.has_diff else "cover" if lm.counter == 0 else "other"
        out.append(
            {
                "msgid": m.msgid,
                "subject": lm.full_subject,
                "author": author(lm.fromname, lm.fromemail, f),
                "date": lm.date,
                "kind": kind,
                "revision": lm.revision,
                "counter": lm.counter,
                "expected": lm.expected,
                "in_reply_to": lm.in_reply_to,
                "trailers": {
                    "fixes": list(f.fixes),
                    "links": list(f.links),
                    "cves": list(f.cves),
                    "upstream": f.upstream,
                },
            }
        )
    return out


def store_entry(entry: Path, msgid: str, data: bytes, meta: Meta) -> str | None:
    """Write the entry atomically; a concurrent writer's good entry wins. None when the
    entry is in place, else why not (logged: it costs this run nothing, but a later
    offline run will not find the thread)."""
    sdir = entry.parent
    tmp: Path | None = None
    trash: list[Path] = []
    try:
        sdir.mkdir(parents=True, exist_ok=True)
        tmp = work = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + entry.name[:40] + "-", dir=sdir))
        _write_file(work / "thread.mbox", data)
        _write_file(work / "meta.json", json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8"))
        for _attempt in range(3):
            try:
                os.rename(work, entry)
                tmp = None
                return None
            except OSError:
                if not entry.exists():
                    continue
            if not isinstance(check_entry(entry, msgid), str):
                return None  # another process stored it first: keep theirs
            # a corrupt entry: move it aside, then retry the rename
            trash.append(Path(tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=sdir)))
            with contextlib.suppress(OSError):
                os.rename(entry, trash[-1] / "old")
        why = f"{entry} could not be put in place"
    except OSError as e:
        why = f"cannot write {e.filename or sdir}: {e.strerror or e}"
    finally:
        for d in [*trash, *([tmp] if tmp is not None else [])]:
            shutil.rmtree(d, ignore_errors=True)
    log.warning("cannot store %s in cache: %s", msgid, why)
    return why


def write_am(entry: Path, sel: Selection) -> Path | None:
    """The selection as an mboxrd for ``git am --patch-format=mboxrd`` (derived from
    thread.mbox, so rebuilt when missing).

    The selected messages go in as received: b4's get_am_ready() would re-encode bodies
    (CRLF dropped, undecodable bytes replaced) and its serialiser is quadratic in size.
    """
    path = entry / sel.am_name
    if path.is_file():
        return path
    try:
        atomic_write(path, mboxrd(sel.raws), TMP_PREFIX)
    except OSError as e:
        log.warning("cannot write %s: %s", path, e.strerror or e)
        return None
    return path


# ---- stored selections -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredSelection:
    revision: int
    subject: str
    patches: tuple[PatchMail, ...]
    am_mbox: Path
    fetched: str
    note: str


def selection_name(fix: Fix) -> str:
    """File of a fix's selection in its cache entry (not ``*.mbox``: never an am file)."""
    rev = "latest" if fix.revision is None else f"v{fix.revision}"
    pick = "all" if not fix.patches else "p" + ",".join(map(str, sorted(fix.patches)))
    return f"sel-{rev}-{pick}.json"


def selection_key(fix: Fix) -> dict[str, Any]:
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
        "date": p.date,
        "body": p.body,
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
        upstream=upstream_for(fix, index, count) or trailer,
        fixes=_strs(d["fixes"]),
        links=_strs(d["links"]),
        cves=_strs(d["cves"]),
        date=str(d["date"]),
        body=str(d["body"]),
    )


def seal(payload: bytes) -> bytes:
    """A selection file's bytes: its payload's sha256 on the first line, so that a torn or
    damaged file is never taken for a selection."""
    return sha256(payload).encode("ascii") + b"\n" + payload


def unseal(raw: bytes) -> bytes | None:
    """The payload of a selection file, or None when its checksum does not match."""
    digest, _, payload = raw.partition(b"\n")
    return payload if digest.decode("ascii", "replace") == sha256(payload) else None


def signature(entry: str | Path) -> list[int] | None:
    """Size and mtime (ns) of meta.json and thread.mbox: while they are unchanged, the entry
    is the one a stored selection's check found sound (as git's index trusts a file's stat)."""
    out: list[int] = []
    for name in ("meta.json", "thread.mbox"):
        try:
            st = os.stat(os.path.join(entry, name))
        except OSError:
            return None
        out += [st.st_size, st.st_mtime_ns]
    return out


def read_selection(cache_dir: Path, fix: Fix) -> StoredSelection | None:
    """The fix's selection from its cache entry's selection file, or None (no sound
    entry, no file, a file for other thread bytes or that cannot be read).

    The entry's files are checked (meta.json read, thread.mbox's checksum) only when they
    changed since the selection was written: a warm run reads one file per fix. (Plain
    os.path strings: this runs once per fix of every warm run.)"""
    assert fix.msgid is not None
    entry = os.path.join(cache_dir, "series", safe_name(fix.msgid))
    path = os.path.join(entry, selection_name(fix))
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    payload = unseal(raw)
    if payload is None:
        log.debug("ignoring damaged selection file %s", path)
        return None  # torn or edited: recomputed (and rewritten) from thread.mbox
    try:
        sel = json.loads(payload)
        if not isinstance(sel, dict) or sel.get("key") != selection_key(fix):
            return None
        fetched = sel["fetched"]
        now = signature(entry)  # taken before the check: a change after it shows later
        if sel["signature"] is None or sel["signature"] != now:
            res = check_entry(Path(entry), fix.msgid)
            if isinstance(res, str):
                return None  # the normal path reports (or re-fetches) a broken entry
            if sel.get("sha256") != res[1].get("sha256"):
                return None
            fetched = res[1].get("fetched", "")
            if now is not None:  # sound as it is now (e.g. a fresh checkout): say so
                sel["signature"], sel["fetched"] = now, fetched
                _store_selection(Path(path), sel)
        am = os.path.join(entry, str(sel["am_mbox"]))
        if not os.path.isfile(am):
            return None  # rebuilt by the normal path
        count = len(sel["patches"])
        mails = tuple(_mail_from_json(p, fix, i, count) for i, p in enumerate(sel["patches"]))
        if not mails:
            return None
        return StoredSelection(
            revision=int(sel["revision"]),
            subject=str(sel["subject"]),
            patches=mails,
            am_mbox=Path(am),
            fetched=str(fetched),
            note=str(sel["note"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        log.debug("ignoring unreadable selection file %s", path)
        return None  # derived data: recomputed (and rewritten) from thread.mbox


def held_signature(entry: Path, thread_sha256: str) -> list[int] | None:
    """The entry's signature when the entry is sound and holds the thread of that sha256
    (taken before its check: a change after it shows as another signature), else None."""
    now = signature(entry)
    res = check_entry(entry, None)
    return None if isinstance(res, str) or res[1].get("sha256") != thread_sha256 else now


def write_selection(
    entry: Path,
    thread_sha256: str,
    entry_signature: list[int] | None,
    fetched: str,
    fix: Fix,
    sel: Selection,
    am: Path,
) -> None:
    """Write the fix's selection next to thread.mbox (atomically; failures only cost
    the b4 work again next time). ``entry_signature``: the entry's when it was found to hold
    the thread (None: every read checks the entry)."""
    data = {
        "key": selection_key(fix),
        "sha256": thread_sha256,
        "signature": entry_signature,
        "fetched": fetched,
        "revision": sel.revision,
        "subject": sel.subject,
        "note": sel.note,
        "am_mbox": am.name,
        "patches": [_mail_to_json(p, up) for p, up in zip(sel.patches, sel.trailer_upstream, strict=True)],
    }
    _store_selection(entry / selection_name(fix), data)


def _store_selection(path: Path, data: dict[str, Any]) -> None:
    # atomically; a failure only costs the b4 work (or the entry's check) again next time
    try:
        atomic_write(path, seal(json.dumps(data, ensure_ascii=False).encode("utf-8")), TMP_PREFIX)
    except OSError as e:
        log.debug("cannot write %s: %s", path, e.strerror or e)
