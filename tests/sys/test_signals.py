"""sys/signals.py: an ending signal that arrives while held is delivered when the block ends
(even when another thread could have taken it), and the handlers and mask are as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from patchcheck.sys import signals

ROOT = Path(__file__).resolve().parents[2]


def _mask() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_ctrl_c_within_arrives_when_the_block_ends() -> None:
    handler, mask = signal.getsignal(signal.SIGINT), _mask()
    ran: list[str] = []
    with pytest.raises(KeyboardInterrupt), signals.held():
        os.kill(os.getpid(), signal.SIGINT)
        ran.append("the rest of the block")
    assert ran == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is handler and _mask() == mask


def test_held_even_when_another_thread_could_take_the_signal() -> None:
    """A signal sent to the process may go to a thread that does not hold it: Python then
    runs the handler in the main thread all the same. Within the block it only takes note."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    ran: list[int] = []
    try:
        with pytest.raises(KeyboardInterrupt), signals.held():
            for n in range(20):
                os.kill(os.getpid(), signal.SIGINT)
                ran.append(n)
    finally:
        stop.set()
        other.join()
    assert ran == list(range(20))


def test_a_signal_whose_handler_is_the_default_ends_the_process_after_the_block() -> None:
    code = (
        "import os, signal, sys\n"
        "from patchcheck.sys import signals\n"
        "with signals.held():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('inside', flush=True)\n"
        "print('after', flush=True)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == -signal.SIGTERM and res.stdout == "inside\n"
