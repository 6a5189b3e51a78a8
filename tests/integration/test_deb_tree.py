"""A real Debian linux-source-6.1 .deb (139 MB) read through ``open_tree``.

The .deb and a full extraction of its inner tarball (the reference) come from realtrees.py: they
live outside the repository, in $PATCHCHECK_TEST_DATA (default ~/.cache/patchcheck-test-data),
and are reused between runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from patchcheck.trees import open_tree
from testing.realtrees import VERSIONS, Unavailable, data_dir, deb_name, download, extract

pytestmark = pytest.mark.integration

PATHS = [
    "Makefile",
    "fs/nfsd/nfs4callback.c",
    "fs/nfsd/nfs4state.c",
    "fs/nfsd/state.h",
    "kernel/events/core.c",
    "kernel/workqueue.c",
    "mm/slub.c",
    "net/sunrpc/svc.c",
    "include/linux/workqueue.h",
    "fs/nfsd/no-such-file.c",
]


def _version() -> str:
    """A version already downloaded (the .debs are big), else the newest the issues name."""
    for version in VERSIONS:
        if (data_dir() / deb_name(version)).is_file():
            return version
    return VERSIONS[-1]


@pytest.fixture(scope="module")
def deb() -> Path:
    try:
        return download(_version())
    except Unavailable as e:
        pytest.skip(f"no real linux-source .deb: {e}")


@pytest.fixture(scope="module")
def reference(deb: Path) -> Path:
    """The whole tree, extracted once by other means (dpkg-deb | tar), for comparison."""
    try:
        return extract(deb.name.split("_")[1])
    except Unavailable as e:
        pytest.skip(f"cannot extract {deb.name}: {e}")


def test_real_debian_deb_reads_like_a_full_extraction(deb: Path, reference: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = (deb.stat().st_mtime_ns, deb.stat().st_size)

    t0 = time.perf_counter()
    tree = open_tree(str(deb), cache_dir=cache)
    tree.prepare(PATHS)
    cold = {p: tree.read(p) for p in PATHS}
    t_cold = time.perf_counter() - t0

    t0 = time.perf_counter()
    warm_tree = open_tree(str(deb), cache_dir=cache)
    warm_tree.prepare(PATHS)
    warm = {p: warm_tree.read(p) for p in PATHS}
    t_warm = time.perf_counter() - t0

    print(f"\n{deb.name}: cold open+prepare+read of {len(PATHS)} paths {t_cold:.2f}s, warm {t_warm:.3f}s")
    for path in PATHS:
        ref = reference / path
        expected = ref.read_bytes() if ref.is_file() else None
        assert cold[path] == expected, path
        assert warm[path] == expected, path
    assert tree.info.kind == "deb"
    assert tree.info.version is not None and tree.info.version.startswith("6.1.")
    assert tree.info.release and deb.name.split("_")[1] == tree.info.release
    assert "linux (" in (tree.changelog() or "")
    assert warm_tree.archive_passes == 0  # type: ignore[attr-defined]
    assert (deb.stat().st_mtime_ns, deb.stat().st_size) == before
    # Only what was asked for was written: a handful of files, not 80,000.
    extracted = [p for p in cache.rglob("*") if p.is_file() and "files" in p.parts]
    assert len(extracted) == len(PATHS) - 1
