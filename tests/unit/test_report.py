"""The agreement report in its three forms (HTML page, PDF, zip) and report.json: they
agree with each other, the zip rebuilds the leaderboard, and only staff reach them."""

import contextlib
import io
import json
import math
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from pypdf import PdfReader

from analysis.core.cli import main as analysis_cli
from studies.models import Study
from tests.factories import make_live_study, make_reported_study

pytestmark = pytest.mark.django_db
SECTIONS = (
    "1. Summary", "2. Leaderboard", "3. Agreement", "4. Metrics versus people",
    "5. Examples", "6. Readiness", "7. Decision", "8. Provenance",
)  # fmt: skip


@pytest.fixture
def study() -> Study:
    return make_reported_study()


class _Text(HTMLParser):
    """The page's visible text, without plots, styles, headings and captions."""

    SKIP = {"svg", "style", "h2", "figcaption", "nav", "form", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP or self.depth:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, str):
        return [float(t) for t in NUMBER.findall(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)] + _numbers_in(list(value))
    return [n for v in value for n in _numbers_in(v)]


def _page(client: Client, study: Study, query: str = "") -> str:
    response = client.get(f"/reports/studies/{study.slug}/{query}")
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _report_json(client: Client, study: Study, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/studies/{study.slug}/report{query}")
    assert response.status_code == 200
    return response.json()


# Where each section's numbers come from in report.json.
SOURCES = {
    "summary": ("analysis.summary", "analysis.leaderboard", "analysis.flagged_raters",
                "analysis.simulated_votes", "analysis.excluded_raters", "analysis.excluded_votes"),
    "leaderboard": ("analysis.leaderboard",),
    "agreement": ("analysis.agreement", "analysis.leaderboard.position", "analysis.summary"),
    "metrics": ("analysis.metrics", "analysis.metric_values", "analysis.item_metrics",
                "analysis.metric_problems"),
    "examples": ("analysis.examples",),
    "readiness": ("analysis.readiness", "analysis.leaderboard.rows", "analysis.media_flags"),
    "decision": ("decision", "bounds"),
    "provenance": ("provenance", "analysis.leaderboard.options",
                   "analysis.leaderboard.uncertainty"),
}  # fmt: skip


def _at(document: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        document = document[key]
    return document


def _unexplained(text: str, known: list[float]) -> list[str]:
    missing = []
    for token in NUMBER.findall(text):
        decimals = len(token.split(".")[1]) if "." in token else 0
        value, tolerance = float(token), 0.5 * 10**-decimals + 1e-9
        if not any(abs(x - value) <= tolerance or abs(100 * x - value) <= tolerance for x in known):
            missing.append(token)
    return missing


def test_every_number_on_the_page_is_its_sections_number_in_report_json(
    study: Study, admin_client: Client
) -> None:
    query = "?budget=0.004&latency=5"
    page, document = _page(admin_client, study, query), _report_json(admin_client, study, query)
    counted = 0
    for section, paths in SOURCES.items():
        html = page.split(f'<section id="{section}">')[1].split("</section>")[0]
        parser = _Text()
        parser.feed(html)
        text = " ".join(parser.parts)
        counted += len(NUMBER.findall(text))
        known = sorted({n for path in paths for n in _numbers_in(_at(document, path))})
        missing = _unexplained(text, known)
        assert not missing, f"{section}: numbers report.json does not hold there: {missing}"
    assert counted > 150  # the page shows its numbers: the check had work to do


def test_the_leaderboard_and_decision_on_the_page_are_those_of_report_json(
    study: Study, admin_client: Client
) -> None:
    document = _report_json(admin_client, study, "?budget=0.002")
    page = _page(admin_client, study, "?budget=0.002")
    rows = document["analysis"]["leaderboard"]["rows"]
    table = page.split('id="leaderboard"')[1].split("</table>")[0]
    cells = re.findall(r"<strong>([^<]+)</strong>.*?<td class=\"num\">([\d.]+)</td>", table, re.S)
    assert [(name, float(score)) for name, score in cells] == [
        (r["system"], round(r["elo"], 1)) for r in rows
    ]
    decision = document["decision"]
    costs = {
        o["system"]: o["cost_per_image"] for o in document["analysis"]["readiness"]["operations"]
    }
    # The budget leaves out exactly the systems dearer than it, and the best of the rest
    # is the one people rank highest.
    assert set(decision["remaining"]) == {
        s for s, c in costs.items() if c is not None and c <= 0.002
    }
    ranked = [r["system"] for r in rows if r["system"] in decision["remaining"]]
    assert decision["best"] == ranked[0]
    assert f"<strong>{decision['best']}</strong>" in page.split('id="decision"')[1]


@pytest.mark.pdf
def test_the_pdf_has_every_section_and_the_leaderboard(study: Study, admin_client: Client) -> None:
    response = admin_client.get(f"/reports/studies/{study.slug}/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for heading in SECTIONS:
        assert heading in text
    for name in study.systems.values_list("name", flat=True):
        assert name in text


def _bundle(client: Client, study: Study) -> zipfile.ZipFile:
    response = client.get(f"/reports/studies/{study.slug}/report.zip")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))  # type: ignore[attr-defined]


def test_the_zip_rebuilds_the_same_leaderboard(
    study: Study, admin_client: Client, tmp_path: Path
) -> None:
    bundle = _bundle(admin_client, study)
    names = set(bundle.namelist())
    assert {
        "votes.csv", "votes_dictionary.csv", "report.json", "leaderboard.csv", "agreement.csv",
        "metric_values.csv", "correlations.csv", "disagreements.csv", "operations.csv",
    } <= names  # fmt: skip
    document = json.loads(bundle.read("report.json"))
    stored = document["analysis"]["leaderboard"]
    (tmp_path / "votes.csv").write_bytes(bundle.read("votes.csv"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert analysis_cli(["leaderboard", str(tmp_path / "votes.csv"), "--json"]) == 0
    rebuilt = json.loads(out.getvalue())["leaderboard"]
    assert rebuilt["n_votes"] == stored["n_votes"] == document["provenance"]["votes_used"]
    assert rebuilt["uncertainty"]["method"] == stored["uncertainty"]["method"]
    for mine, theirs in zip(rebuilt["rows"], stored["rows"], strict=True):
        assert mine["system"] == theirs["system"]
        for key in ("elo", "elo_low", "elo_high", "wins", "losses", "ties"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-6), key
    header = bundle.read("votes_dictionary.csv").decode().splitlines()
    assert len(header) == 1 + len(bundle.read("votes.csv").decode().splitlines()[0].split(","))


def test_the_bundles_tables_are_the_reports(study: Study, admin_client: Client) -> None:
    bundle = _bundle(admin_client, study)
    document = json.loads(bundle.read("report.json"))
    lines = bundle.read("leaderboard.csv").decode().splitlines()
    header = lines[0].split(",")
    elo = header.index("elo")
    assert [float(line.split(",")[elo]) for line in lines[1:]] == [
        r["elo"] for r in document["analysis"]["leaderboard"]["rows"]
    ]
    disagreements = bundle.read("disagreements.csv").decode().splitlines()[1:]
    assert disagreements and all(line.startswith("made-up,") for line in disagreements)


@pytest.mark.parametrize("path", ["", "report.pdf", "report.zip"])
def test_non_staff_are_refused_every_form(study: Study, client: Client, path: str) -> None:
    url = f"/reports/studies/{study.slug}/{path}"
    assert client.get(url).status_code == 302  # to the admin's login
    get_user_model()._default_manager.create_user("rater", password="pw-1234567")
    client.login(username="rater", password="pw-1234567")
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(f"/api/studies/{study.slug}/report").status_code == 403


@pytest.mark.parametrize("query", ["?budget=cheap", "?latency=-1", "?budget=nan", "?budget=inf"])
def test_bad_bounds_are_a_clear_400_in_every_form(
    study: Study, admin_client: Client, query: str
) -> None:
    for path in ("", "report.pdf", "report.zip"):
        response = admin_client.get(f"/reports/studies/{study.slug}/{path}{query}")
        assert response.status_code == 400
        assert b"must be" in response.content
    api = admin_client.get(f"/api/studies/{study.slug}/report{query}")
    assert api.status_code == 400 and "must be" in api.json()["detail"]


def test_a_study_without_a_report_says_it_is_being_built(admin_client: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from analysis import tasks

    monkeypatch.setattr(tasks.build_report, "delay", lambda **kw: None)
    study = make_live_study(systems=2, prompts=2)
    response = admin_client.get(f"/reports/studies/{study.slug}/")
    assert response.status_code == 202 and b"being built" in response.content
    assert admin_client.get(f"/api/studies/{study.slug}/report").status_code == 202


@pytest.mark.pdf
def test_export_report_writes_each_format(study: Study, tmp_path: Path) -> None:
    for fmt in ("html", "pdf", "zip", "json"):
        out = tmp_path / f"report.{fmt}"
        call_command(
            "export_report", study.slug, "--format", fmt, "--out", str(out), "--budget", "1"
        )
        assert out.stat().st_size > 1000
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert zipfile.ZipFile(tmp_path / "report.zip").testzip() is None
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["bounds"]["budget"] == 1.0 and document["decision"]["best"]
    html = (tmp_path / "report.html").read_text()
    assert all(heading in html for heading in SECTIONS)


def test_export_report_refuses_what_it_cannot_do(study: Study, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    with pytest.raises(CommandError, match="no criterion"):
        call_command(
            "export_report", study.slug, "--format", "html", "--out", out, "--criterion", "nope"
        )
    with pytest.raises(CommandError, match="must be"):
        call_command("export_report", study.slug, "--format", "html", "--out", out, "--budget", "x")
    with pytest.raises(CommandError, match="cannot be written"):
        call_command(
            "export_report", study.slug, "--format", "html", "--out", str(tmp_path / "no" / "r")
        )


def test_readiness_figures_come_from_the_generation_log(study: Study, admin_client: Client) -> None:
    ready = _report_json(admin_client, study)["analysis"]["readiness"]
    ops = {o["system"]: o for o in ready["operations"]}
    first, _, api = study.systems.order_by("pk").values_list("name", flat=True)
    assert ops[first]["gpu_seconds_per_image"] == pytest.approx(6.0 + 0.1 * 2.5)  # 6 + 0.1 j, j < 6
    assert ops[api]["cost_per_image"] == 0.002 and "by hand" in ops[api]["cost_basis"]
    assert ops[api]["gpu_seconds_per_image"] is None
    assert not math.isnan(ops[first]["cost_per_image"])
    assert {g["attribute"] for g in ready["group_gaps"]} == {"group"}
    assert len(ready["replicates"]) == 1000 and len(ready["replicate_systems"]) == 3


def test_a_long_list_of_flagged_raters_is_cut_on_the_page(study: Study) -> None:
    """A crowd study flags hundreds of raters: the page names the first few and points to
    report.json, so the summary stays readable (and WeasyPrint lays it out in time)."""
    import dataclasses

    from analysis.reports import FlaggedRater, ReportOptions, read_report
    from reports.document import Bounds
    from reports.render import render_html

    key = study.criteria.first().key  # type: ignore[union-attr]
    state = read_report(study=study, options=ReportOptions(criterion=key))
    assert state.report is not None and state.analysis is not None
    many = tuple(FlaggedRater(rater_id=1000 + k, votes=5, flags=("too_fast",)) for k in range(40))
    analysis = dataclasses.replace(state.analysis, flagged_raters=many)
    html = render_html(study=study, report=state.report, analysis=analysis, bounds=Bounds())
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert "40 flagged" in summary and "rater 1011 (too_fast)" in summary
    assert "rater 1012 " not in summary and "flagged_raters" in summary
