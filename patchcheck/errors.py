"""Exception types and the exit codes they map to.

Every failure a user can cause or meet is one of these; ``cli.main`` is the single
boundary that prints them as one line and exits with ``exit_code``. Anything else reaching
it is a defect: exit ``EXIT_INTERNAL``, the traceback in ``$XDG_STATE_HOME/patchcheck/logs/``.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_NO_SERIES = 3
EXIT_INTERNAL = 4  # a defect in patchcheck (not bad input): the traceback goes to a log file


class PatchcheckError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user; ``hint``, when
    there is one, what to do about it (printed as a second line, ``hint: ...``)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        # the worker processes send errors back pickled; subclasses take other arguments
        # than the message, so the copy is rebuilt without calling __init__
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[PatchcheckError], args: tuple[Any, ...], state: dict[str, Any]) -> PatchcheckError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class BadInput(PatchcheckError):
    """Bad option, unknown bug id, unreadable file: exit 2."""


class BugFileError(BadInput):
    """A known-bug file is malformed; the message names file, key and expectation."""

    def __init__(self, path: object, key: str | None, expected: str) -> None:
        where = f"{path}: {key}" if key else f"{path}"
        super().__init__(f"{where}: {expected}")
        self.path = path
        self.key = key


class TreeError(BadInput):
    """A tree is missing, unreadable or not a kernel tree: exit 2."""


class SeriesError(PatchcheckError):
    """A fix series could not be obtained (network, 404, corrupt, offline miss): exit 3.

    ``reason`` sorts the failures a user can act on: ``UNREACHABLE`` (the archive did not
    answer: no network, a timeout, a server error) and ``NOT_CACHED`` (offline, and the cache
    has no sound copy); the verbs turn them into hints that name the bugs."""

    exit_code = EXIT_NO_SERIES
    UNREACHABLE = "unreachable"
    NOT_CACHED = "not-cached"

    def __init__(self, message: str = "", *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class ToolError(PatchcheckError):
    """An external tool (git, patch, rpmbuild...) failed in a way we cannot interpret."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (a BaseException, so no ``except
    Exception`` swallows it) and ends the run with 128 + the signal number, after the
    exit-time cleanups."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
