"""Signature cutting belongs to the mail, not to the diff inside it (issue 11 item 16): a
fix that removes lines reading ``-- `` and ``--`` (in the diff: ``--- `` and ``---``) and
lines reading ``- `` and ``-`` (in the diff: ``-- `` and ``--``), posted as git
format-patch posts it (a ``-- `` signature after the diff), is fetched through the local
public-inbox server and judged by the real CLI: backportable on the tree without it,
present on the tree with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from patchcheck.fetch.mail import cut_signature
from patchcheck.model import Fix
from testing import mailgen
from testing.kfixtures import MAKEFILE, make_diff, write_tree
from testing.pi_server import PIServer
from testing.rig import bug_file, env, no_traceback
from tests.fetch.helpers import fetcher

DOC = "Documentation/mail/signature.rst"
OLD = {
    "Makefile": MAKEFILE,
    DOC: (
        "Signatures\n==========\n\nA mail signature starts after the line\n\n"
        "-- \n--\n- \n-\n"
        "\nand what follows it is not the patch.\nTools must not cut inside a hunk.\n"
    ),
}
NEW = {**OLD, DOC: OLD[DOC].replace("-- \n--\n- \n-\n", "(dash dash space)\n")}
MSGID = "dashes-1@example.org"


def _diff(tmp: Path) -> bytes:
    diff = make_diff(tmp, OLD, NEW)
    # the removed lines look like a ---/+++ header, format-patch's "---" and its signature
    for line in (b"\n--- \n", b"\n---\n", b"\n-- \n", b"\n--\n"):
        assert line in diff, diff
    return diff


def test_cut_signature_keeps_dash_lines_of_a_hunk(tmp_path: Path) -> None:
    diff = _diff(tmp_path)
    assert cut_signature(diff + b"-- \n2.40.0\n\n") == diff
    assert cut_signature(diff) == diff
    crlf = diff.replace(b"\n", b"\r\n")
    assert cut_signature(crlf + b"-- \r\n2.40.0\r\n") == crlf


def test_dash_lines_fetched_and_judged_end_to_end(pi_server: PIServer, tmp_path: Path) -> None:
    diff = _diff(tmp_path)
    mail = mailgen.make_patch_mail("doc: one separator", diff, MSGID)
    assert mail.endswith(diff + b"-- \n2.40.0\n")  # the mail's own signature follows the diff
    pi_server.add_thread(mailgen.make_mbox([mail]))
    assert fetcher(tmp_path, pi_server).get(Fix(msgid=MSGID)).patches[0].diff == diff
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    bug_file(bugs, "dashes", f'msgid = "{MSGID}"')
    got = {}
    for name, files in (("old", OLD), ("new", NEW)):
        tree = write_tree(tmp_path / name, files)
        argv = [sys.executable, "-m", "patchcheck", "check", "--tree", str(tree), "--bug", "dashes"]
        argv += ["--format", "json", "--bugs-dir", str(bugs), "--cache-dir", str(tmp_path / "cli-cache")]
        argv += ["--lore-url", pi_server.url]
        cp = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=120, cwd=tmp_path)
        no_traceback(cp)
        (r,) = json.loads(cp.stdout)["results"]
        got[name] = (cp.returncode, r["verdict"], r["method"], [h["status"] for h in r["patches"][0]["hunks"]])
    assert got == {"old": (1, "backportable", "clean", ["clean"]), "new": (0, "present", "exact", ["present"])}
