"""Hostile archives and trees cannot reach outside (issue 12, the trees room).

Each test builds a hostile tree with the real tools (tarfile, rpmbuild, dpkg-deb, GNU patch's
git diffs), runs the real command as a user does (``python -m patchcheck``) and checks: the
exit code, no traceback, nothing created, changed or removed outside the cache (a decoy
folder and a stand-in $HOME are snapshotted around the run, TMPDIR must stay empty), the
user's tree or archive byte-identical, and for bombs the peak memory of the run.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.kfixtures import c_file, make_diff, write_tree
from testing.mailgen import make_mbox, make_patch_mail
from testing.rig import HUNK_A, OLD, Completed, edit, env, no_traceback
from testing.treegen import have, snapshot

TOP = "linux-4.19.90"
SECRET = c_file("secret")  # the decoy's file: what a link out of the tree would read
LEAKED = SECRET + "/* fixed */\n"
MiB = 1 << 20


@dataclass
class Scene:
    root: Path
    bugs: Path
    cache: Path
    decoy: Path  # a folder outside every tree and the cache: links point here
    home: Path  # $HOME of the runs
    tmp: Path  # $TMPDIR of the runs: must stay empty

    def argv(self, tree: Path | str, bug: str, cache: Path | str | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "patchcheck",
            "check",
            "--tree",
            str(tree),
            "--bug",
            bug,
            "--no-shipped-bugs",
            "--bugs-dir",
            str(self.bugs),
            "--cache-dir",
            str(cache or self.cache),
            # the tree cache beside the series (relative when the cache is: item 13)
            "--tree-cache",
            os.path.join(str(cache or self.cache), "trees"),
            "--offline",
            "--format",
            "json",
        ]

    def run(
        self,
        tree: Path | str,
        bug: str = "b-fix",
        *,
        more: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
        cache: Path | str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Completed:
        e = {
            **env(),
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "TMPDIR": str(self.tmp),
            **(extra_env or {}),
        }
        cp = subprocess.run(
            [*prefix, *self.argv(tree, bug, cache), *more],
            capture_output=True,
            text=True,
            env=e,
            cwd=self.root,
            timeout=600,
        )
        no_traceback(cp)
        return cp


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    s = Scene(
        root=tmp_path,
        bugs=tmp_path / "bugs",
        cache=tmp_path / "cache",
        decoy=write_tree(tmp_path / "decoy", {"secret.c": SECRET, "notes.txt": "keep me\n"}),
        home=tmp_path / "home",
        tmp=tmp_path / "tmp",
    )
    for d in (s.home, s.tmp, s.bugs / "fixes"):
        d.mkdir(parents=True)
    work = tmp_path / "gen"
    work.mkdir()
    fixes = {
        "b-fix": make_diff(work, OLD, edit(OLD, "fs/a.c", *HUNK_A)),
        "b-leak": make_diff(
            work, {"fs/leak.c": SECRET, "fs/leak2.c": SECRET}, {"fs/leak.c": LEAKED, "fs/leak2.c": LEAKED}
        ),
    }
    for bug, diff in fixes.items():
        (s.bugs / "fixes" / f"{bug}.mbox").write_bytes(
            make_mbox([make_patch_mail(f"{bug}: fix", diff, f"{bug}@x")])
        )
        (s.bugs / f"{bug}.toml").write_text(
            f'id = "{bug}"\ntitle = "{bug}"\nseverity = "high"\n\n[[fix]]\nmbox = "fixes/{bug}.mbox"\n'
        )
    return s


@contextlib.contextmanager
def untouched(scene: Scene, *users: Path) -> Iterator[None]:
    """Nothing outside the cache changes: the decoy, $HOME, the user's folders; TMPDIR empty."""
    watched = [scene.decoy, scene.home, *users]
    before = [snapshot(p) for p in watched]
    yield
    for path, snap in zip(watched, before, strict=True):
        assert snapshot(path) == snap, f"{path} changed"
    assert not list(scene.tmp.iterdir()), "files left in TMPDIR"


def results(cp: Completed) -> dict[str, dict[str, object]]:
    assert cp.stdout.strip(), (cp.returncode, cp.stderr)
    return {r["bug"]: r for r in json.loads(cp.stdout)["results"]}


def tree_notes(cp: Completed) -> list[str]:
    return list(json.loads(cp.stdout)["trees"][0]["notes"])


def one_line(cp: Completed, code: int) -> str:
    assert cp.returncode == code, (cp.returncode, cp.stdout[-500:], cp.stderr)
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    return lines[0]


# -- builders of hostile input ----------------------------------------------------------------


def tar_bytes(files: dict[str, str | bytes], links: dict[str, str] | None = None, top: str = TOP) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for rel, data in sorted(files.items()):
            raw = data.encode() if isinstance(data, str) else data
            ti = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            ti.size = len(raw)
            tf.addfile(ti, io.BytesIO(raw))
        for rel, target in (links or {}).items():
            ti = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
    return buf.getvalue()


@functools.cache
def _zeros(kind: str) -> bytes:
    """64 MiB of zeros, compressed once: concatenated, gzip members and xz streams inflate
    to any multiple of it from a file of a few hundred KB."""
    data = bytes(64 * MiB)
    return gzip.compress(data, 9) if kind == "gz" else lzma.compress(data, preset=0)


def tar_body(files: dict[str, str | bytes], top: str = TOP) -> bytes:
    """Members without the end blocks (and padding) tarfile closes an archive with, so that
    more members can follow."""
    body = tar_bytes(files, top=top)
    while body.endswith(bytes(512)):
        body = body[:-512]
    return body


def bomb_tar(kind: str, files: dict[str, str | bytes], bomb: str, chunks: int, top: str = TOP) -> bytes:
    """A compressed tar whose member ``bomb`` declares (and holds) ``chunks`` x 64 MiB of zeros."""
    head = tar_body(files, top)
    ti = tarfile.TarInfo(f"{top}/{bomb}")
    ti.size = chunks * 64 * MiB
    pack = functools.partial(gzip.compress, compresslevel=1) if kind == "gz" else lzma.compress
    return pack(head + ti.tobuf(tarfile.USTAR_FORMAT)) + _zeros(kind) * chunks + pack(bytes(1024))


def rpmbuild(work: Path, out: Path, sources: dict[str, bytes], patches: list[str], applied: list[str]) -> Path:
    """A real SRPM (gzip payload) with Source0 = linux-4.19.90.tar.xz and ``patches``."""
    top = work / "rpmbuild"
    (top / "SOURCES").mkdir(parents=True)
    (top / "SPECS").mkdir()
    for name, data in sources.items():
        (top / "SOURCES" / name).write_bytes(data)
    spec = [
        "Name: kernel",
        "Version: 4.19.90",
        "Release: 1.ky10",
        "Summary: k",
        "License: GPLv2",
        "Source0: linux-4.19.90.tar.xz",
        *(f"Patch{i + 1}: {p}" for i, p in enumerate(patches)),
        "",
        "%description",
        "k",
        "",
        "%prep",
        "%setup -q -n linux-4.19.90",
        *(f"ApplyPatch {p}" for p in applied),
        "",
        "%build",
        "",
        "%changelog",
        "* Mon Jan 01 2024 Dev <dev@example.org> - 4.19.90-1",
        "- x",
    ]
    (top / "SPECS" / "kernel.spec").write_text("\n".join(spec) + "\n")
    subprocess.run(
        ["rpmbuild", "-bs", "--define", f"_topdir {top}", "--define", "_source_payload w9.gzdio"]
        + [str(top / "SPECS" / "kernel.spec")],
        check=True,
        capture_output=True,
    )
    (built,) = (top / "SRPMS").glob("*.src.rpm")
    out.mkdir(parents=True)
    return Path(shutil.move(built, out / built.name))


Member = tuple[str, int, bytes]  # cpio name, mode, data


def _newc(members: list[Member]) -> bytes:
    out = bytearray()
    for i, (name, mode, data) in enumerate([*members, ("TRAILER!!!", 0, b"")]):
        raw = name.encode() + b"\0"
        fields = [i + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + b"".join(b"%08X" % v for v in fields) + raw
        out += bytes(-len(out) % 4) + data + bytes(-len(data) % 4)
    return bytes(out)


def _unnewc(blob: bytes) -> list[Member]:
    members, pos = [], 0
    while True:
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        name = blob[pos + 110 : pos + 110 + fields[11] - 1].decode()
        pos += 110 + fields[11]
        pos += -pos % 4
        if name == "TRAILER!!!":
            return members
        members.append((name, fields[1], blob[pos : pos + fields[6]]))
        pos += fields[6]
        pos += -pos % 4


def rewrite_payload(srpm: Path, change: Callable[[list[Member]], list[Member]]) -> None:
    """Replace an SRPM's payload: same lead and headers, the members ``change`` returns."""
    import rpmfile

    with open(srpm, "rb") as f, rpmfile.open(fileobj=f) as rpm:
        offset = rpm.data_offset
    raw = srpm.read_bytes()
    members = change(_unnewc(gzip.decompress(raw[offset:])))
    srpm.write_bytes(raw[:offset] + gzip.compress(_newc(members)))


def write_dsc(out: Path, orig: bytes, debian: tuple[str, bytes], fmt: str = "3.0 (quilt)") -> Path:
    """A .dsc written by hand (dpkg-source refuses what a hostile package holds)."""
    out.mkdir(parents=True)
    files = {"linux_4.19.90.orig.tar.xz": orig, debian[0]: debian[1]}
    sha, md5 = [], []
    for name, data in files.items():
        (out / name).write_bytes(data)
        sha.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
        md5.append(f" {hashlib.md5(data).hexdigest()} {len(data)} {name}")
    text = f"Format: {fmt}\nSource: linux\nVersion: 4.19.90-1\nChecksums-Sha256:\n" + "\n".join(sha)
    (out / "linux_4.19.90-1.dsc").write_text(text + "\nFiles:\n" + "\n".join(md5) + "\n")
    return out / "linux_4.19.90-1.dsc"


def debian_tar(files: dict[str, str | bytes]) -> bytes:
    return lzma.compress(tar_bytes({f"debian/{k}": v for k, v in files.items()}, top=""))


def symlink_patch(path: str, target: str) -> bytes:
    """A git diff that makes ``path`` a symlink to ``target`` (GNU patch creates it)."""
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n"
        f"+++ b/{path}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    ).encode()


def need(*tools: str) -> None:
    for tool in tools:
        if not have(tool):
            pytest.skip(f"{tool} is not installed")


def two_links(scene: Scene) -> dict[str, str]:
    """fs/leak.c -> the decoy's secret.c by absolute path, fs/leak2.c by climbing ``..``."""
    target = scene.decoy / "secret.c"
    return {"fs/leak.c": str(target), "fs/leak2.c": "../" * 24 + str(target).lstrip("/")}


def assert_links_not_followed(cp: Completed) -> None:
    """The fix touches fs/leak.c and fs/leak2.c, both links out: absent, so not-applicable,
    and the tree's notes say why."""
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    assert results(cp)["b-leak"]["verdict"] == "not-applicable"
    notes = tree_notes(cp)
    for path in ("fs/leak.c", "fs/leak2.c"):
        assert any(path in n and "symlink leading out of the tree" in n for n in notes), notes


# -- item 4: SRPM payload names are never cpio patterns ---------------------------------------


def test_srpm_payload_names_are_taken_by_exact_name(scene: Scene) -> None:
    """A name like ``evil.patch?x.patch`` matched ``evil.patch/x.patch`` as a cpio glob, and
    cpio wrote it through a symlink member ``evil.patch -> <decoy>``."""
    need("rpmbuild")
    sources = {
        "linux-4.19.90.tar.xz": lzma.compress(tar_bytes(OLD)),
        "evil.patch": b"x\n",
        "evil.patch?x.patch": b"x\n",
    }
    srpm = rpmbuild(scene.root / "w", scene.root / "user", sources, ["evil.patch", "evil.patch?x.patch"], [])

    def plant(members: list[Member]) -> list[Member]:
        kept = [m for m in members if not m[0].startswith("evil.patch")]
        link = ("evil.patch", 0o120777, str(scene.decoy).encode())
        return [*kept, link, ("evil.patch/x.patch", 0o100644, b"planted\n")]

    rewrite_payload(srpm, plant)
    with untouched(scene, srpm.parent):
        cp = scene.run(srpm)
    assert cp.returncode == 1, cp.stderr
    assert results(cp)["b-fix"]["verdict"] == "backportable"
    assert not (scene.decoy / "x.patch").exists()


def test_unsafe_member_names_are_refused_naming_the_archive(scene: Scene) -> None:
    """The path gate: a member named ``../x`` or ``/x`` is refused, never written or read."""
    need("rpmbuild")
    (scene.root / "user").mkdir()
    tarball = scene.root / "user" / "linux.tar.gz"
    tarball.write_bytes(gzip.compress(tar_body({"../evil.c": "x\n"}, top="") + tar_bytes(OLD)))
    srpm = rpmbuild(
        scene.root / "w", scene.root / "srpm", {"linux-4.19.90.tar.xz": lzma.compress(tar_bytes(OLD))}, [], []
    )
    rewrite_payload(srpm, lambda members: [("/../evil.patch", 0o100644, b"x\n"), *members])
    for archive in (tarball, srpm):
        with untouched(scene, archive.parent):
            line = one_line(scene.run(archive), 2)
        assert str(archive) in line and "unsafe path" in line, line


# -- item 6: symlinks planted by a patch queue are not followed out ---------------------------


@pytest.mark.parametrize("kind", ["srpm", "dsc"])
def test_queue_symlinks_are_not_followed_out(scene: Scene, kind: str) -> None:
    queue = {f"000{i}-link.patch": symlink_patch(p, t) for i, (p, t) in enumerate(two_links(scene).items(), 1)}
    if kind == "srpm":
        need("rpmbuild")
        sources = {"linux-4.19.90.tar.xz": lzma.compress(tar_bytes(OLD)), **queue}
        tree = rpmbuild(scene.root / "w", scene.root / "user", sources, list(queue), list(queue))
    else:
        debian = {"changelog": "linux (4.19.90-1) noble; urgency=medium\n", "patches/series": "\n".join(queue)}
        debian |= {f"patches/{name}": data for name, data in queue.items()}
        tree = write_dsc(
            scene.root / "user",
            lzma.compress(tar_bytes(OLD)),
            ("linux_4.19.90-1.debian.tar.xz", debian_tar(debian)),
        )
    with untouched(scene, tree.parent):
        cp = scene.run(tree, "b-leak")
    assert_links_not_followed(cp)


# -- item 7: folder, work tree, --rev and archives agree on links out of the tree ------------


def test_links_out_of_the_tree_read_as_absent_in_every_view(scene: Scene) -> None:
    links = two_links(scene)
    folder = write_tree(scene.root / "user" / "folder", OLD)
    for rel, target in links.items():
        (folder / rel).symlink_to(target)
    repo = scene.root / "user" / "git"
    shutil.copytree(folder, repo, symlinks=True)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x", *args], cwd=repo, check=True)
    tarball = scene.root / "user" / "linux.tar.gz"
    tarball.write_bytes(gzip.compress(tar_bytes(OLD, links)))
    views: list[tuple[Path, tuple[str, ...]]] = [
        (folder, ()),
        (repo, ()),
        (repo, ("--rev", "HEAD")),
        (tarball, ()),
    ]
    for tree, more in views:
        with untouched(scene, scene.root / "user"):
            cp = scene.run(tree, "b-leak", more=more)
        assert_links_not_followed(cp)


# -- item 13: a relative --cache-dir ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["srpm", "dsc"])
def test_relative_cache_dir_with_a_patch_queue(scene: Scene, kind: str) -> None:
    work = scene.root / "gen2"
    work.mkdir()
    patch = make_diff(work, OLD, edit(OLD, "fs/b.c", "\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)"))
    if kind == "srpm":
        need("rpmbuild")
        sources = {"linux-4.19.90.tar.xz": lzma.compress(tar_bytes(OLD)), "0001-b.patch": patch}
        tree = rpmbuild(scene.root / "w", scene.root / "user", sources, ["0001-b.patch"], ["0001-b.patch"])
    else:
        debian = {"changelog": "linux (4.19.90-1) noble; urgency=medium\n", "patches/series": "0001-b.patch\n"}
        debian["patches/0001-b.patch"] = patch
        tree = write_dsc(
            scene.root / "user",
            lzma.compress(tar_bytes(OLD)),
            ("linux_4.19.90-1.debian.tar.xz", debian_tar(debian)),
        )
    with untouched(scene, tree.parent):
        cp = scene.run(tree, cache="cache")
    assert cp.returncode == 1, cp.stderr
    assert results(cp)["b-fix"]["verdict"] == "backportable"
    assert (scene.root / "cache" / "trees").is_dir()


# -- item 16: disk full while caching -------------------------------------------------------------


def test_disk_full_names_the_file_and_what_was_written(scene: Scene) -> None:
    if os.geteuid() != 0 or not have("unshare"):
        pytest.skip("needs root and unshare to mount a small tmpfs as the cache")
    # fs/a.c is large: at each size the cache fills at another write (the content key, the
    # member index, a member at open, a member at prepare)
    files = {**OLD, "fs/a.c": OLD["fs/a.c"] + "/* " + "x" * (256 * 1024) + " */\n"}
    (scene.root / "user").mkdir()
    tarball = scene.root / "user" / "linux.tar.xz"
    tarball.write_bytes(lzma.compress(tar_bytes(files)))
    script = (
        'mount -t tmpfs -o size="$0" none "$1" || exit 99; cache="$1"; left="$2"; shift 2; "$@"; rc=$?; '
        'find "$cache" -name "staging-*" -o -name ".tmp-*" -o -name "scratch-*" > "$left"; exit $rc'
    )
    for size in ("4k", "8k", "12k", "16k", "64k"):
        cache = scene.root / f"cache-{size}"
        cache.mkdir()
        left = scene.root / f"left-{size}"
        with untouched(scene, tarball.parent):
            cp = scene.run(
                tarball, cache=cache, prefix=("unshare", "-m", "sh", "-c", script, size, str(cache), str(left))
            )
        if cp.returncode == 99:
            pytest.skip("cannot mount a tmpfs here")
        line = one_line(cp, 2)
        assert f"error: {cache}/" in line and "No space left on device" in line and "cannot write" in line, line
        assert left.read_text() == "", f"partial files left: {left.read_text()}"


# -- item 18: decompression bombs -------------------------------------------------------------------

RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)\n"
)


def bomb_deb(work: Path, out: Path, changelog_gz: bytes) -> Path:
    pkg = work / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-source-4.19\nVersion: 4.19.90-1\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: fake linux source\n"
    )
    doc = pkg / "usr/share/doc/linux-source-4.19"
    doc.mkdir(parents=True)
    (doc / "changelog.Debian.gz").write_bytes(changelog_gz)
    (pkg / "usr/src").mkdir(parents=True)
    (pkg / "usr/src/linux-source-4.19.tar.xz").write_bytes(lzma.compress(tar_bytes(OLD, top="linux-source-4.19")))
    out.mkdir(parents=True)
    deb = out / "linux-source-4.19_4.19.90-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", pkg, deb], check=True, capture_output=True
    )
    return deb


@pytest.mark.parametrize("kind", ["tarball", "deb-changelog", "dsc-debian-tar", "dsc-diff-gz", "srpm-patch"])
def test_decompression_bombs_stop_at_the_member_limit(scene: Scene, kind: str) -> None:
    """1 GiB bombs against a 16 MiB limit (the option or its variable); the .deb's 3 GiB
    changelog against the default 512 MiB. Memory stays low and the cache keeps nothing big."""
    user = scene.root / "user"
    extra_env = {"PATCHCHECK_MAX_MEMBER_BYTES": "16M"}
    more: tuple[str, ...] = ()
    limit = "16 MiB"
    rest = {k: v for k, v in OLD.items() if k != "fs/a.c"}
    if kind == "tarball":
        user.mkdir()
        tree = user / "linux.tar.xz"
        tree.write_bytes(bomb_tar("xz", rest, "fs/a.c", 16))
    elif kind == "deb-changelog":
        need("dpkg-deb")
        tree = bomb_deb(scene.root / "w", user, _zeros("gz") * 48)
        extra_env, limit = {}, "512 MiB"
    elif kind == "dsc-debian-tar":
        debian = bomb_tar("xz", {"changelog": "x\n", "patches/series": ""}, "junk", 16, top="debian")
        tree = write_dsc(user, lzma.compress(tar_bytes(OLD)), ("linux_4.19.90-1.debian.tar.xz", debian))
    elif kind == "dsc-diff-gz":
        tree = write_dsc(
            user, lzma.compress(tar_bytes(OLD)), ("linux_4.19.90-1.diff.gz", _zeros("gz") * 16), "1.0"
        )
        extra_env, more, limit = {}, ("--max-member-bytes", "8M"), "8 MiB"
    else:
        need("rpmbuild")
        sources = {"linux-4.19.90.tar.xz": lzma.compress(tar_bytes(OLD)), "0001-bomb.patch.gz": _zeros("gz") * 16}
        tree = rpmbuild(scene.root / "w", user, sources, ["0001-bomb.patch.gz"], ["0001-bomb.patch.gz"])
    rss = scene.root / "rss"
    with untouched(scene, user):
        cp = scene.run(tree, more=more, extra_env=extra_env, prefix=(sys.executable, "-c", RSS, str(rss)))
    line = one_line(cp, 2)
    assert f"larger than the {limit} limit" in line and "--max-member-bytes" in line, line
    assert int(rss.read_text()) < 300 * 1024, f"peak RSS {int(rss.read_text()) // 1024} MB"
    big = [p for p in scene.cache.rglob("*") if p.is_file() and p.stat().st_size > MiB]
    assert not big, big
    assert not [p for p in scene.cache.rglob("*") if p.name.startswith(("staging-", ".tmp-", "scratch-", "src-"))]
