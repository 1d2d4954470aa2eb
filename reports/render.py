"""The report in its three forms: HTML, PDF (the same HTML laid out for print by
WeasyPrint) and the zip bundle, each from the stored report alone."""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import default_storage
from django.template.loader import render_to_string

from analysis.models import StudyReport
from analysis.realness_report import RealnessAnalysis
from analysis.reports import StudyAnalysis
from reports.bundle import write_bundle
from reports.document import Bounds, page_context
from reports.realness import realness_context, write_realness_bundle
from studies.models import Study


class PdfUnavailable(RuntimeError):
    """WeasyPrint's system libraries (Pango) are missing on this machine."""


def render_html(
    *,
    study: Study,
    report: StudyReport,
    analysis: StudyAnalysis | RealnessAnalysis,
    bounds: Bounds,
    media_url: Callable[[str], str] = default_storage.url,
    extra: dict[str, Any] | None = None,
) -> str:
    """The report page; ``extra`` adds page-only context (links, criteria, warnings).
    A real-or-generated study's page has no decision: ``bounds`` do not apply to it."""
    if isinstance(analysis, RealnessAnalysis):
        context = realness_context(report, analysis)
        context.update(study=study, **(extra or {}))
        return render_to_string("reports/realness.html", context)
    context = page_context(report, analysis, bounds, media_url=media_url)
    context.update(study=study, show_examples=True, **(extra or {}))
    return render_to_string("reports/report.html", context)


def _file_uri(name: str) -> str:
    return Path(default_storage.path(name)).as_uri()


def render_pdf(
    *,
    study: Study,
    report: StudyReport,
    analysis: StudyAnalysis | RealnessAnalysis,
    bounds: Bounds,
) -> bytes:
    """The report laid out on A4 pages; the examples' media are read from storage.

    Raises
    ------
    PdfUnavailable
        When WeasyPrint cannot load Pango (install the system's libpango).
    """
    try:
        import weasyprint  # imported here: it loads system libraries at import
    except OSError as exc:
        raise PdfUnavailable(
            f"PDF output needs Pango (Debian: apt install libpango-1.0-0 libpangoft2-1.0-0): {exc}"
        ) from exc
    html = render_html(
        study=study, report=report, analysis=analysis, bounds=bounds, media_url=_file_uri
    )
    return bytes(weasyprint.HTML(string=html, base_url=str(Path.cwd())).write_pdf())


def render_zip(
    *,
    study: Study,
    report: StudyReport,
    analysis: StudyAnalysis | RealnessAnalysis,
    bounds: Bounds,
) -> IO[bytes]:
    """The bundle in a temporary file (spilled to disk past 8 MiB), rewound."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  # the caller closes it
    if isinstance(analysis, RealnessAnalysis):
        write_realness_bundle(out, study=study, report=report, analysis=analysis)
    else:
        write_bundle(out, study=study, report=report, analysis=analysis, bounds=bounds)
    out.seek(0)
    return out  # type: ignore[return-value]
