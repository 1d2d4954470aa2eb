"""The read side of a real-or-generated study: its judgments loaded as arrays, the stored
report built from them, and every reader of the stored report (page, PDF, zip, JSON,
the gate, the leaderboard page, stopping). Runs on SQLite: no server needed.

The study is built through the ORM with answers fixed by hand, so every fooled rate
below is a share counted here, not read back from the code under test."""

import csv
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from pypdf import PdfReader

from analysis.models import ReportStatus, StudyReport
from analysis.realness_report import RealnessAnalysis, study_judgments
from analysis.reports import ReportOptions, build_report, read_report
from analysis.stopping import check_stopping
from metrics.imports import import_metric_csv
from studies.models import (
    Asset,
    AssetKind,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    ExternalIds,
    Rater,
    RaterSource,
    Study,
    StudyStatus,
    StudyType,
    System,
    Vote,
)
from tests.factories import make_asset, make_criterion, make_prompt, make_study, make_system

pytestmark = pytest.mark.django_db
# Shares are counted exactly; the core rounds to 12 digits.
EXACT = 1e-12

Plan = list[tuple[str, str, int | None]]
# Per rater: (system, answers, exposure_ms) where answers are what the rater said of two
# images of that system ("R": real, "G": generated). "photos" holds the real images.
HONEST: dict[str, Plan] = {
    "A": [("alpha", "RR", 0), ("beta", "RG", 0), ("gamma", "GG", 0), ("photos", "RR", 0)],
    "B": [("alpha", "RG", None), ("beta", "GR", None), ("gamma", "GG", None),
          ("photos", "RG", None)],
    "C": [("alpha", "RR", 500), ("beta", "GG", 500), ("gamma", "RG", 500), ("photos", "RR", 500)],
    "D": [("alpha", "GR", 500), ("beta", "RG", 500), ("gamma", "GG", 500), ("photos", "RR", 500)],
}  # fmt: skip
# A simulated rater who sees through alpha, and a rater who fails the attention checks
# and calls everything of gamma real.
SIMULATED: Plan = [("alpha", "GG", 0)]
CARELESS: Plan = [("gamma", "RR", 0), ("photos", "GR", 0)]
# Fooled rates counted from the tables above (generated images of the system judged real).
FOOLED_HONEST = {"alpha": 6 / 8, "beta": 3 / 8, "gamma": 1 / 8}
FOOLED_ALL = {"alpha": 6 / 10, "beta": 3 / 8, "gamma": 3 / 10}
REAL_ERROR_HONEST = {"alpha": 1 / 8}  # B called one real image generated


@dataclass
class Built:
    study: Study
    criterion: str
    raters: dict[str, Rater]
    judgments: int  # every current judgment of the study


def _judge(study: Study, rater: Rater, criterion: Any, plan: Plan) -> int:
    made = 0
    for system_name, answers, exposure in plan:
        system = System.objects.get(study=study, name=system_name)
        outputs = list(Asset.objects.filter(system=system, kind=AssetKind.OUTPUT).order_by("pk"))
        for asset, said in zip(outputs, answers, strict=False):
            truth = "real" if system.is_real else "generated"
            assignment = Assignment.objects.create(
                study=study, rater=rater, kind=AssignmentKind.JUDGMENT, prompt=asset.prompt,
                criterion=criterion, left_asset=asset, right_asset=asset, expected_answer=truth,
                status=AssignmentStatus.ANSWERED, exposure_ms=exposure,
            )  # fmt: skip
            Vote.objects.create(
                assignment=assignment,
                answer="real" if said == "R" else "generated",
                response_ms=1000 + made,
                client_id=uuid.uuid4(),
            )
            made += 1
    return made


def _check(study: Study, rater: Rater, criterion: Any, *, passed: bool) -> None:
    copy = Asset.objects.filter(system__study=study, kind=AssetKind.ATTENTION).first()
    assert copy is not None
    assignment = Assignment.objects.create(
        study=study, rater=rater, kind=AssignmentKind.ATTENTION, prompt=copy.prompt,
        criterion=criterion, left_asset=copy, right_asset=copy, expected_answer="generated",
        status=AssignmentStatus.ANSWERED,
    )  # fmt: skip
    Vote.objects.create(
        assignment=assignment,
        answer="generated" if passed else "real",
        response_ms=900,
        client_id=uuid.uuid4(),
    )


def build_study(*, metrics: str | None = None) -> Built:
    """Systems made in the reverse of their fooled-rate order, so that the page's order
    is the rates', not the study's."""
    study = make_study(
        study_type=StudyType.REALNESS, status=StudyStatus.LIVE,
        external_ids_in_exports=ExternalIds.HASHED,
    )  # fmt: skip
    make_system(study, name="photos", is_real=True)
    for name in ("gamma", "beta", "alpha"):
        make_system(study, name=name)
    prompt = make_prompt(study)
    criterion = make_criterion(
        study, key="realness", question="Is this image real or generated?", order=0
    )
    for system in study.systems.all():
        for seed in range(2):
            asset = make_asset(system, prompt, seed=seed)
            if not system.is_real and seed == 0:
                make_asset(system, prompt, seed=0, kind=AssetKind.ATTENTION, source=asset)
    raters = {name: Rater.objects.create(study=study, external_id=f"pid-{name}") for name in HONEST}
    raters["S"] = Rater.objects.create(study=study, source=RaterSource.SIMULATED)
    raters["F"] = Rater.objects.create(study=study, external_id="pid-F")
    made = sum(_judge(study, raters[n], criterion, plan) for n, plan in HONEST.items())
    made += _judge(study, raters["S"], criterion, SIMULATED)
    made += _judge(study, raters["F"], criterion, CARELESS)
    _check(study, raters["A"], criterion, passed=True)
    _check(study, raters["F"], criterion, passed=False)
    _check(study, raters["F"], criterion, passed=False)  # 2 > max_failed_attention_checks (1)
    # Neither a served judgment nor a superseded vote counts.
    served = Asset.objects.filter(system__name="alpha", system__study=study).first()
    assert served is not None
    Assignment.objects.create(
        study=study, rater=raters["A"], kind=AssignmentKind.JUDGMENT, prompt=prompt,
        criterion=criterion, left_asset=served, right_asset=served, expected_answer="generated",
    )  # fmt: skip
    old = Vote.objects.filter(assignment__rater=raters["D"]).order_by("pk").first()
    assert old is not None
    Vote.objects.filter(pk=old.pk).update(is_current=False)
    Vote.objects.create(
        assignment=old.assignment, answer=old.answer, response_ms=old.response_ms,
        client_id=uuid.uuid4(), supersedes=old,
    )  # fmt: skip
    if metrics:
        import_metric_csv(study=study, data=metrics.encode(), name="metrics.csv")
    return Built(study, criterion.key, raters, made)


# FD_DINOv2 orders the systems as people do (lower = more realistic); Inception FID the
# other way round; "two" has values for two systems only.
METRICS = (
    "system,metric,value,lower_is_better\n"
    "alpha,fd_dinov2,100,true\nbeta,fd_dinov2,200,true\ngamma,fd_dinov2,300,true\n"
    "alpha,fid_inception,30,true\nbeta,fid_inception,20,true\ngamma,fid_inception,10,true\n"
    "alpha,two,1,true\nbeta,two,2,true\n"
)


@pytest.fixture
def built() -> Built:
    return build_study(metrics=METRICS)


def _options(built: Built, **overrides: Any) -> ReportOptions:
    fields: dict[str, Any] = {"criterion": built.criterion}
    fields.update(overrides)
    return ReportOptions(**fields)


def _analysis(built: Built, **overrides: Any) -> RealnessAnalysis:
    options = _options(built, **overrides)
    report = build_report(study=built.study, options=options)
    assert report.status == ReportStatus.READY, report.message
    state = read_report(study=built.study, options=options)
    assert state.analysis is None and state.realness is not None
    return state.realness


def _fooled(analysis: RealnessAnalysis) -> dict[str, float | None]:
    return {s.system: s.fooled.value for s in analysis.realness.systems}


def test_the_loader_reads_current_answered_judgments_into_arrays(built: Built) -> None:
    loaded = study_judgments(study=built.study, criterion=built.criterion)
    assert loaded.systems == ("gamma", "beta", "alpha")
    assert loaded.real_source == "real"
    assert loaded.vote_id.size == built.judgments == 38
    by_rater = {pk: name for name, r in built.raters.items() for pk in [r.pk]}
    rows = sorted(
        (by_rater[int(r)], str(s), str(a))
        for r, s, a in zip(loaded.rater_id, loaded.source, loaded.answer, strict=True)
    )
    expected = sorted(
        (name, "real" if system == "photos" else system, "real" if said == "R" else "generated")
        for name, plan in {**HONEST, "S": SIMULATED, "F": CARELESS}.items()
        for system, answers, _ in plan
        for said in answers
    )
    assert rows == expected
    # Exposure: 0 and null are unlimited.
    for name, plan in HONEST.items():
        mine = loaded.rater_id == built.raters[name].pk
        wanted = np.inf if not plan[0][2] else float(plan[0][2])
        assert (loaded.exposure_ms[mine] == wanted).all()
    assert set(loaded.rater_id[loaded.simulated].tolist()) == {built.raters["S"].pk}
    assert loaded.simulated_raters == frozenset({built.raters["S"].pk})
    failed = loaded.check_rater_id[~loaded.check_passed].tolist()
    assert failed == [built.raters["F"].pk] * 2
    assert loaded.check_passed.sum() == 1


def test_the_stored_report_gives_the_hand_counted_fooled_rates(built: Built) -> None:
    analysis = _analysis(built)
    for system, rate in FOOLED_ALL.items():
        assert _fooled(analysis)[system] == pytest.approx(rate, abs=EXACT)
    assert analysis.simulated_included and analysis.simulated_judgments == 2
    assert [s.system for s in analysis.realness.systems] == ["gamma", "beta", "alpha"]
    assert analysis.question == "Is this image real or generated?"
    report = StudyReport.objects.get(study=built.study, key=_options(built).key)
    assert report.votes_used == built.judgments
    assert report.body is not None and report.body["study_type"] == "realness"
    # F failed two checks (more than the study's one): flagged, included.
    flagged = {f.rater_id: f.flags for f in analysis.flagged_raters}
    assert "failed_checks" in flagged[built.raters["F"].pk]
    assert analysis.excluded_raters == 0
    assert (analysis.attention_checks, analysis.attention_passed) == (3, 1)


def test_flagged_and_simulated_raters_are_left_out_on_request(built: Built) -> None:
    analysis = _analysis(built, include_simulated=False, exclude_flagged=True)
    for system, rate in FOOLED_HONEST.items():
        assert _fooled(analysis)[system] == pytest.approx(rate, abs=EXACT)
    assert analysis.realness.system("alpha").real_error.value == pytest.approx(
        REAL_ERROR_HONEST["alpha"], abs=EXACT
    )
    assert (analysis.excluded_raters, analysis.excluded_judgments) == (1, 4)
    assert analysis.simulated_judgments == 2 and not analysis.simulated_included
    assert analysis.realness.n_raters == 4
    # Without the simulated rater only: alpha loses its two "generated" answers.
    alone = _analysis(built, include_simulated=False)
    assert _fooled(alone)["alpha"] == pytest.approx(6 / 8, abs=EXACT)
    assert _fooled(alone)["gamma"] == pytest.approx(3 / 10, abs=EXACT)


def test_the_fooled_rate_is_broken_down_by_exposure(built: Built) -> None:
    alpha = _analysis(built, include_simulated=False).realness.system("alpha")
    at = {e.exposure_ms: e.fooled for e in alpha.by_exposure}
    assert set(at) == {None, 500.0}
    assert at[None].value == pytest.approx(3 / 4, abs=EXACT)  # A: 2 of 2, B: 1 of 2
    assert at[500.0].value == pytest.approx(3 / 4, abs=EXACT)  # C: 2 of 2, D: 1 of 2


def test_metrics_are_correlated_with_the_fooled_rate(built: Built) -> None:
    analysis = _analysis(built, include_simulated=False, exclude_flagged=True)
    found = {c.metric: c for c in analysis.metrics}
    dino, inception = found["fd_dinov2"], found["fid_inception"]
    assert dino.systems == ("gamma", "beta", "alpha")
    assert dino.human == pytest.approx([1 / 8, 3 / 8, 6 / 8])
    assert dino.coefficient("spearman").value == pytest.approx(1.0)
    assert inception.coefficient("spearman").value == pytest.approx(-1.0)
    assert dino.coefficient("kendall_tau_b").replicates > 0
    # Two systems: no number, and the reason.
    two = found["two"]
    assert all(k.value is None for k in two.coefficients)
    assert any("needs at least 3" in n for n in two.notes)


def test_a_study_without_judgments_stores_an_empty_report() -> None:
    study = make_study(study_type=StudyType.REALNESS)
    make_criterion(study, key="realness")
    report = build_report(study=study, options=ReportOptions(criterion="realness"))
    assert report.status == ReportStatus.EMPTY and "No judgments" in report.message


@pytest.fixture
def staff_client() -> Client:
    user = get_user_model()._default_manager.create_user(
        "realness-staff", password="x", is_staff=True
    )
    client = Client()
    client.force_login(user)
    return client


def test_the_report_page_lists_systems_by_fooled_rate(built: Built, staff_client: Client) -> None:
    analysis = _analysis(built)
    response = staff_client.get(f"/reports/studies/{built.study.slug}/")
    assert response.status_code == 200
    page = response.content.decode()
    table = page.split('id="systems"')[1].split("</table>")[0]
    shown = re.findall(r'<tr data-system="([^"]+)">\s*<td><strong>[^<]+</strong>.*?'
                       r'<td class="num">([\d.]+)</td>', table, re.S)  # fmt: skip
    assert [name for name, _ in shown] == ["alpha", "beta", "gamma"]
    assert [float(v) for _, v in shown] == [round(FOOLED_ALL[n], 3) for n, _ in shown]
    alpha = analysis.realness.system("alpha")
    assert alpha.fooled.low is not None and alpha.fooled.high is not None
    assert f"{alpha.fooled.low:.3f} to {alpha.fooled.high:.3f}" in table
    assert "By exposure" in page and "fd_dinov2" in page
    assert "Is this image real or generated?" in page
    assert "Leaderboard" not in page.split("<main")[1].split("<header>")[0]
    # The simulated rater called both of alpha's images generated: the core's note.
    assert "1 rater(s) gave the same answer to every image." in analysis.realness.notes
    assert "1 rater(s) gave the same answer to every image." in page


def test_the_json_api_returns_the_realness_body(built: Built, staff_client: Client) -> None:
    _analysis(built)
    response = staff_client.get(f"/api/studies/{built.study.slug}/report")
    assert response.status_code == 200
    document = response.json()
    assert document["study_type"] == "realness"
    systems = {s["system"]: s for s in document["analysis"]["realness"]["systems"]}
    assert systems["alpha"]["fooled"]["value"] == pytest.approx(FOOLED_ALL["alpha"])
    assert document["provenance"]["votes_used"] == built.judgments
    board = staff_client.get(f"/api/studies/{built.study.slug}/leaderboard")
    assert board.status_code == 200 and board.json()["report"]["study_type"] == "realness"


def test_the_gate_and_the_leaderboard_page_say_they_are_pairwise(
    built: Built, staff_client: Client
) -> None:
    from studies.models import ApiToken

    _analysis(built)
    token = ApiToken(user=get_user_model()._default_manager.get(), name="ci", scopes=["read"])
    secret = token.new_secret()
    token.save()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    gate = api.get(
        f"/api/v1/studies/{built.study.slug}/gate", {"candidate": "alpha", "baseline": "beta"}
    )
    assert gate.status_code == 400
    assert "pairwise studies" in gate.json()["detail"]
    page = staff_client.get(f"/analysis/studies/{built.study.slug}/leaderboard")
    assert page.status_code == 200
    assert "real-or-generated study" in page.content.decode()


def test_stop_when_settled_leaves_a_realness_study_alone(built: Built) -> None:
    built.study.stop_when_settled = True
    built.study.save(update_fields=["stop_when_settled"])
    assert check_stopping(study=built.study).settled == ()
    assert not StudyReport.objects.filter(study=built.study).exists()


def test_the_zip_holds_exactly_the_judgments_the_report_used(
    built: Built, staff_client: Client
) -> None:
    _analysis(built, include_simulated=False, exclude_flagged=True)
    response = staff_client.get(
        f"/reports/studies/{built.study.slug}/report.zip",
        {"criterion": built.criterion, "simulated": "exclude", "flagged": "exclude"},
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.getvalue()))
    rows = list(csv.DictReader(io.StringIO(archive.read("judgments.csv").decode())))
    honest = {built.raters[n].pk for n in HONEST}
    stored = Vote.objects.filter(
        assignment__study=built.study, assignment__kind=AssignmentKind.JUDGMENT,
        assignment__status=AssignmentStatus.ANSWERED, is_current=True,
        assignment__rater_id__in=honest,
    )  # fmt: skip
    assert sorted(int(r["vote_id"]) for r in rows) == sorted(stored.values_list("pk", flat=True))
    assert {r["rater"] for r in rows} == {f"rater {pk}" for pk in honest}
    by_id = {v.pk: v for v in stored.select_related("assignment__left_asset__system")}
    for row in rows:
        vote = by_id[int(row["vote_id"])]
        system = vote.assignment.left_asset.system
        assert row["system"] == ("real" if system.is_real else system.name)
        assert row["answer"] == vote.answer
        assert int(row["response_ms"]) == vote.response_ms
        assert int(row["exposure_ms"]) == (vote.assignment.exposure_ms or 0)
        # Participant ids only hashed.
        assert row["participant_id"] and not row["participant_id"].startswith("pid-")
    document = json.loads(archive.read("report.json"))
    assert document["study_type"] == "realness"
    assert document["provenance"]["votes_used"] == len(rows) == 32
    systems = list(csv.DictReader(io.StringIO(archive.read("systems.csv").decode())))
    assert [s["system"] for s in systems] == ["alpha", "beta", "gamma"]


@pytest.mark.pdf
def test_the_pdf_shows_the_fooled_rates(built: Built, staff_client: Client) -> None:
    _analysis(built)
    response = staff_client.get(f"/reports/studies/{built.study.slug}/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Systems by fooled rate" in text and "alpha" in text


def test_export_report_writes_a_realness_study_as_json_and_zip(built: Built, tmp_path: Any) -> None:
    from django.core.management import call_command

    out = tmp_path / "report.json"
    call_command("export_report", built.study.slug, "--format", "json", "--out", str(out))
    document = json.loads(out.read_text())
    assert document["study_type"] == "realness"
    bundle = tmp_path / "report.zip"
    call_command("export_report", built.study.slug, "--format", "zip", "--out", str(bundle))
    with zipfile.ZipFile(bundle) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("judgments.csv").decode())))
    assert len(rows) == built.judgments
