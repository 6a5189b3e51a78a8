import pytest, json, time, os, subprocess, shutil
from rig import Rig, GOOD, LOCAL, bug_file
from kfixtures import write_tree

@pytest.mark.parametrize("case", ["fifo-tree", "fifo-inside", "fifo-makefile", "dir-inside", "loop", "loop-inside", "notkernel", "file-tree", "dev-null", "empty-file-inside", "socket-inside"])
def test_probe(rig: Rig, case: str) -> None:
    tree = rig.tree
    if case == "fifo-tree":
        tree = rig.root / "fifo.tar.gz"; os.mkfifo(tree)
    elif case == "fifo-inside":
        (tree / "fs/a.c").unlink(); os.mkfifo(tree / "fs/a.c")
    elif case == "fifo-makefile":
        (tree / "Makefile").unlink(); os.mkfifo(tree / "Makefile")
    elif case == "dir-inside":
        (tree / "fs/a.c").unlink(); (tree / "fs/a.c").mkdir()
    elif case == "loop":
        tree = rig.root / "l1"; tree.symlink_to(rig.root / "l2"); (rig.root / "l2").symlink_to(tree)
    elif case == "loop-inside":
        (tree / "fs/a.c").unlink(); (tree / "fs/a.c").symlink_to("a.c")
    elif case == "notkernel":
        tree = rig.root / "empty"; tree.mkdir()
    elif case == "file-tree":
        tree = rig.root / "x.txt"; tree.write_text("hello")
    elif case == "dev-null":
        tree = "/dev/null"
    elif case == "empty-file-inside":
        (tree / "fs/a.c").write_bytes(b"")
    elif case == "socket-inside":
        import socket
        (tree / "fs/a.c").unlink(); s = socket.socket(socket.AF_UNIX); s.bind(str(tree / "fs/a.c"))
    t = time.time()
    try:
        cp = rig.run("check", "--tree", str(tree), "--bug", "b-good", "--bug", LOCAL, "--format", "json", limit=20)
    except subprocess.TimeoutExpired:
        print(case, "HANG"); return
    print(case, cp.returncode, round(time.time()-t, 2), repr(cp.stderr[:300]))
    if cp.stdout:
        for r in json.loads(cp.stdout)["results"]:
            print("  ", r["bug"], r["verdict"], r["method"], r["error"], [p["evidence"][:200] for p in r["patches"]])
