"""The report formats: a registry of renderer modules, each loaded only when asked for.

Every renderer reads the same ``Report`` (``report.model``) so the formats cannot disagree
about a verdict. A renderer module offers ``render(report, options)`` and
``render_triage(triage, options)``; one that encodes each result on its own may offer
``encode_result(result)``, which a check then runs beside the cells (``Report.encoded``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from patchcheck.errors import BadInput

if TYPE_CHECKING:  # the command line imports this module for FORMATS: the rest waits for a report
    from patchcheck.model import BugResult
    from patchcheck.report.model import RenderOptions, Report, TriageReport

# format name -> module of this package; the order is the one --help shows
_MODULES = {
    "table": "table",
    "json": "json_report",
    "markdown": "markdown",
    "html": "html",
    "junit": "junit",
}
FORMATS = tuple(_MODULES)


class _Renderer(Protocol):
    def render(self, report: Report, options: RenderOptions) -> str: ...

    def render_triage(self, triage: TriageReport, options: RenderOptions) -> str: ...


def renderer(fmt: str) -> _Renderer:
    # Imported lazily: a table run need not load the HTML/XML machinery.
    if fmt not in _MODULES:
        raise BadInput(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    mod: _Renderer = importlib.import_module(f"patchcheck.report.{_MODULES[fmt]}")
    return mod


def result_encoder(fmt: str) -> Callable[[BugResult], str] | None:
    """The format's per-result encoder, if it has one."""
    encode: Callable[[BugResult], str] | None = getattr(renderer(fmt), "encode_result", None)
    return encode


def render(
    report: Report, fmt: str, *, color: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """The report as text in ``fmt``; ``color``, ``verbose`` and ``width`` shape ``table``."""
    from patchcheck.report.model import RenderOptions

    return renderer(fmt).render(report, RenderOptions(color=color, verbose=verbose, width=width))


def render_triage(
    triage: TriageReport, fmt: str, *, color: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """A triage (and its check, if any) as one document in ``fmt``."""
    from patchcheck.report.model import RenderOptions

    return renderer(fmt).render_triage(triage, RenderOptions(color=color, verbose=verbose, width=width))


__all__ = ["FORMATS", "render", "render_triage", "result_encoder"]
