"""Command line: the one boundary that turns errors into exit codes (the options
themselves: cliargs.py).

Imports of the heavy parts (b4, the engine, renderers) happen inside the verbs so that
``patchcheck --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from patchcheck import __version__
from patchcheck.cliargs import VERBS, build_parser, check_environment
from patchcheck.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, PatchcheckError, Terminated


def _normalise_argv(argv: list[str]) -> list[str]:
    if argv and argv[0] not in VERBS and argv[0] not in ("-h", "--help", "--version"):
        return ["check", *argv]
    return argv


def _refuse_output_over_inputs(args: argparse.Namespace) -> None:
    """``-o`` may not name (or lie inside) anything the run reads: the trees, the bugs
    folders and the mbox files their bugs name, the trees file, the cache, the crash log,
    the reports to merge.
    Checked before any work, so the refusal costs nothing and changes nothing."""
    from patchcheck import config
    from patchcheck.bugs.load import load_bugs
    from patchcheck.sys.atomic import refuse_overwrite
    from patchcheck.trees import find_trees_file, load_trees_file

    inputs: list[tuple[Path, str]] = []
    trees_file = find_trees_file(config.trees_file(getattr(args, "trees_file", None)))
    named = load_trees_file(trees_file) if trees_file is not None else {}
    specs = getattr(args, "tree", None) or []
    for spec in [specs] if isinstance(specs, str) else specs:
        # as open_tree resolves it: a name of the trees file unless it holds a "/"
        inputs.append((named[spec].path if "/" not in spec and spec in named else Path(spec), "a tree"))
    if trees_file is not None:
        inputs.append((trees_file, "the trees file"))
    bugs_dirs = config.bugs_dirs(
        getattr(args, "bugs_dir", None), shipped=config.shipped_bugs(getattr(args, "no_shipped_bugs", False))
    )
    inputs += [(d, "a bugs folder") for d in bugs_dirs]
    if all(d.is_dir() for d in bugs_dirs):
        inputs += [(f.mbox, "a bug's mbox") for b in load_bugs(bugs_dirs).all() for f in b.fixes if f.mbox]
    inputs.append((config.cache_dir(getattr(args, "cache_dir", None)), "the cache"))
    if getattr(args, "upstream_repo", None) is not None:
        inputs.append((args.upstream_repo, "the upstream repository"))
    inputs += [(r, "a report to merge") for r in getattr(args, "reports", None) or []]
    crash_log = getattr(args, "file", None)
    if crash_log not in (None, "-"):
        inputs.append((Path(crash_log), "the crash log"))
    refuse_overwrite(args.output, inputs)


def _commands() -> ModuleType | None:
    """sys/proc.py, if this run imported it: a run that did not has started no command (and
    need not pay ~9 ms of start-up for it)."""
    return sys.modules.get("patchcheck.sys.proc")


def _end_commands() -> None:
    if (proc := _commands()) is not None:
        proc.terminate_all()


def _on_signal(signum: int, _frame: object) -> None:
    """SIGTERM/SIGHUP: unwind like Ctrl-C, so the exit-time cleanups (scratch copies of
    tree files in $TMPDIR) run. A second signal ends the process at once."""
    for s in _ENDING_SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    if (proc := _commands()) is not None:
        proc.request_stop()
    raise Terminated(signum)


_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, _on_signal) for s in _ENDING_SIGNALS} if in_main else {}
    try:
        return _boundary(args_list)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if (proc := _commands()) is not None:
            proc.resume()


def _boundary(args_list: list[str]) -> int:
    args: argparse.Namespace | None = None
    try:
        verb = args_list[0] if args_list and args_list[0] in VERBS else None
        args = build_parser(verb).parse_args(args_list)
        if args.verb is None:
            build_parser().print_help()
            return EXIT_BAD_INPUT
        check_environment(args)
        if getattr(args, "output", None) is not None:
            _refuse_output_over_inputs(args)
        from patchcheck.commands import dispatch

        return dispatch(args)
    except PatchcheckError as e:
        print(f"patchcheck: error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except Terminated as t:
        _end_commands()
        print(f"patchcheck: terminated by {signal.Signals(t.signum).name}", file=sys.stderr)
        return 128 + t.signum
    except KeyboardInterrupt:
        _end_commands()
        print("patchcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # e.g. `patchcheck bugs list | head`
        return 0
    except OSError as e:
        print(f"patchcheck: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 - the last line of defence: no tracebacks
        if os.environ.get("PATCHCHECK_DEBUG"):
            raise
        what = (str(e).strip().splitlines() or [""])[0][:200]
        print(
            f"patchcheck: internal error (a defect in patchcheck, not your input): {type(e).__name__}: {what};"
            f" {_crash_log(e, args, args_list)}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _crash_log(e: BaseException, args: argparse.Namespace | None, args_list: list[str]) -> str:
    """Write the traceback to ``$XDG_STATE_HOME/patchcheck/logs/`` (never into the series
    cache, which a packaging repository may commit); what to tell the user about it."""
    import traceback

    from patchcheck import config
    from patchcheck.sys.atomic import atomic_write

    try:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = (config.log_dir() / f"internal-error-{stamp}-{os.getpid()}.log").absolute()
        text = (
            f"patchcheck {__version__}, Python {sys.version.split()[0]}\n"
            f"arguments: {args_list!r}\n\n" + "".join(traceback.format_exception(e))
        )
        atomic_write(path, text.encode("utf-8", "replace"))
    except Exception as le:  # noqa: BLE001 - the log is a courtesy; the exit code stands
        return f"no log written ({type(le).__name__}: {le}); set PATCHCHECK_DEBUG=1 for the traceback"
    return f"traceback in {path}"


if __name__ == "__main__":
    sys.exit(main())
