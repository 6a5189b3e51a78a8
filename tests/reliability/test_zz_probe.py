import pytest
from rig import Rig, GOOD, LOCAL, bug_file

CASES = {
 "toml": 'id = "x\n',
 "unknown": 'id = "x"\ntitle = "t"\ncolour = 1\n[[fix]]\nmsgid = "a@b"\n',
 "wrongtype": 'id = "x"\ntitle = 1\n[[fix]]\nmsgid = "a@b"\n',
 "patches_str": 'id = "x"\ntitle = "t"\n[[fix]]\nmsgid = "a@b"\npatches = "1"\n',
 "idname": 'id = "y"\ntitle = "t"\n[[fix]]\nmsgid = "a@b"\n',
 "angle": 'id = "x"\ntitle = "t"\n[[fix]]\nmsgid = "<a@b>"\n',
 "space": 'id = "x"\ntitle = "t"\n[[fix]]\nmsgid = "a b@c"\n',
 "sha": 'id = "x"\ntitle = "t"\n[[fix]]\nmsgid = "a@b"\nupstream = ["xyz"]\n',
 "dupkey": 'id = "x"\ntitle = "t"\ntitle = "u"\n[[fix]]\nmsgid = "a@b"\n',
 "emptyfix": 'id = "x"\ntitle = "t"\n[[fix]]\n',
 "nofix": 'id = "x"\ntitle = "t"\n',
 "fixtable": 'id = "x"\ntitle = "t"\n[fix]\nmsgid = "a@b"\n',
 "mboxmissing": 'id = "x"\ntitle = "t"\n[[fix]]\nmbox = "fixes/nope.mbox"\n',
 "latin1": b'id = "x"\ntitle = "t\xe9"\n[[fix]]\nmsgid = "a@b"\n',
 "severity": 'id = "x"\ntitle = "t"\nseverity = "urgent"\n[[fix]]\nmsgid = "a@b"\n',
 "dupfix": 'id = "x"\ntitle = "t"\n[[fix]]\nmsgid = "good-1@example.org"\n[[fix]]\nmsgid = "good-1@example.org"\n',
}

@pytest.mark.parametrize("name", list(CASES))
def test_probe(rig: Rig, name: str) -> None:
    c = CASES[name]
    p = rig.bugs / "x.toml"
    p.write_bytes(c if isinstance(c, bytes) else c.encode())
    for args in (["bugs", "validate"], ["check", "--tree", str(rig.tree), "--bug", "x", "--format", "json"], ["check", "--tree", str(rig.tree), "--bug", "b-good"]):
        cp = rig.run(*args)
        print(name, args[0], cp.returncode, repr(cp.stderr[:400]), repr(cp.stdout[:200]))
