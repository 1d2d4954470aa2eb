"""The researcher API: per-user tokens with scopes, the audit log, and the study's life
through it (apply a study file, upload media, generate, launch, read progress, report
and votes). Cookies do not work here; tokens do not work on the rater pages."""

import io
import json
import zipfile
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from studies.models import ApiCall, ApiToken, Study
from tests.factories import make_ready_study, make_reported_study, png_bytes, start_rater

pytestmark = pytest.mark.django_db


def _token(scopes: list[str], *, staff: bool = True, name: str = "ci") -> tuple[ApiToken, str]:
    users = get_user_model()._default_manager
    user = users.create_user(f"{name}-{len(scopes)}-{staff}", password="x", is_staff=staff)
    token = ApiToken(user=user, name=name, scopes=scopes)
    secret = token.new_secret()
    token.save()
    return token, secret


def _client(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


FILE = """\
slug: api-study
name: Through the API
systems:
  - {name: one, backend: synthetic}
  - {name: two, backend: synthetic, backend_params: {noise: 0.3}}
prompts:
  - {text: a red circle}
  - {text: a blue square}
criteria:
  - key: quality
    question: Which image looks better?
"""


def test_scopes_decide_and_every_call_is_audited() -> None:
    study = make_ready_study(systems=2, prompts=1)
    token, secret = _token(["read"])
    api = _client(secret)
    state = api.get(f"/api/v1/studies/{study.slug}")
    assert state.status_code == 200
    assert state.json()["media"] == {"made": 2, "expected": 2}
    refused = api.post(f"/api/v1/studies/{study.slug}/launch")
    assert refused.status_code == 403 and "lacks the 'launch' scope" in refused.json()["detail"]
    assert Study.objects.get(pk=study.pk).status == "ready"
    calls = list(ApiCall.objects.order_by("pk").values_list("method", "path", "status"))
    assert calls == [
        ("GET", f"/api/v1/studies/{study.slug}", 200),
        ("POST", f"/api/v1/studies/{study.slug}/launch", 403),
    ]
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_unknown_revoked_and_non_staff_tokens_are_refused() -> None:
    study = make_ready_study(systems=2, prompts=1)
    url = f"/api/v1/studies/{study.slug}"
    unknown = _client("vd_not-a-token").get(url)
    assert unknown.status_code == 401 and unknown["WWW-Authenticate"].startswith("Bearer")
    token, secret = _token(["read"])
    token.revoked_at = timezone.now()
    token.save()
    assert _client(secret).get(url).status_code == 401
    _, outsider = _token(["read"], staff=False, name="left")
    assert _client(outsider).get(url).status_code == 401
    assert not ApiCall.objects.exists()


def test_cookies_do_not_open_the_api_and_tokens_do_not_open_rater_pages(
    admin_client: Client,
) -> None:
    study = make_ready_study(systems=2, prompts=1)
    assert admin_client.get(f"/api/v1/studies/{study.slug}").status_code == 401
    _, secret = _token(["read", "write", "launch"])
    _client(secret).post(f"/api/v1/studies/{study.slug}/launch")
    rater_api = _client(secret).post(f"/api/r/{study.slug}/session", "{}", "application/json")
    assert rater_api.status_code == 403
    assert "No judging session" in rater_api.json()["detail"]


def test_a_study_file_applies_through_the_api_all_or_nothing() -> None:
    _, secret = _token(["write"])
    api = _client(secret)
    made = api.post("/api/v1/studies", FILE, content_type="application/yaml")
    assert made.status_code == 201, made.content
    assert made.json()["study"]["status"] == "draft"
    again = api.post("/api/v1/studies", FILE, content_type="application/yaml")
    assert again.status_code == 200 and again.json()["changes"] == []
    bad = FILE.replace("noise: 0.3", "noise: 0.3, glow: 1").replace("api-study", "api-other")
    refused = api.post("/api/v1/studies", bad, content_type="application/yaml")
    assert refused.status_code == 400
    assert any("systems['two'].backend_params" in p for p in refused.json()["problems"])
    assert not Study.objects.filter(slug="api-other").exists()
    broken = api.post("/api/v1/studies", "slug: [", content_type="application/yaml")
    assert broken.status_code == 400 and "Not valid YAML" in broken.json()["detail"]
    _, reader = _token(["read"], name="reader")
    exported = _client(reader).get("/api/v1/studies/api-study/definition").json()
    assert exported["systems"][1]["backend_params"] == {"noise": 0.3}
    as_json = api.post("/api/v1/studies", json.dumps(exported), content_type="application/json")
    assert as_json.status_code == 200 and as_json.json()["changes"] == []


def test_media_generation_launch_report_and_votes_through_the_api(settings: Any) -> None:
    _, secret = _token(["read", "write", "launch"])
    api = _client(secret)
    api.post("/api/v1/studies", FILE, content_type="application/yaml")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("manifest.csv", "file,system,prompt,seed\na.png,three,a red circle,0\n")
        z.writestr("a.png", png_bytes(colour=(9, 9, 9)))
    archive.name = "outputs.zip"
    archive.seek(0)
    queued = api.post("/api/v1/studies/api-study/media", {"archive": archive})
    assert queued.status_code == 202 and queued.json()["expected"] >= 1
    not_zip = api.post("/api/v1/studies/api-study/media", {"archive": io.BytesIO(b"x")})
    assert not_zip.status_code == 400 and "archive" in not_zip.json()
    started = api.post("/api/v1/studies/api-study/generate")
    assert started.status_code in (202, 409), started.content
    early = api.post("/api/v1/studies/api-study/launch")
    assert early.status_code == 409 and early.json()["detail"]

    study = make_reported_study()
    report = api.get(f"/api/v1/studies/{study.slug}/report")
    assert report.status_code == 200 and report.json()["analysis"]["leaderboard"]["rows"]
    votes = api.get(f"/api/v1/studies/{study.slug}/votes.csv")
    assert votes.status_code == 200 and votes["Content-Type"].startswith("text/csv")
    assert b"".join(votes.streaming_content).count(b"\n") > 10  # type: ignore[attr-defined]
    assert api.post(f"/api/v1/studies/{study.slug}/pause").json()["status"] == "paused"
    bundle = api.get(f"/api/v1/studies/{study.slug}/report.zip")
    assert bundle.status_code == 200 and bundle["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(bundle.streaming_content))) as z:  # type: ignore[attr-defined]
        assert "report.json" in z.namelist()
    copy = api.post(f"/api/v1/studies/{study.slug}/duplicate", {"name": "Round two"},
                    content_type="application/json")  # fmt: skip
    assert copy.status_code == 201 and copy.json()["status"] == "draft"
    assert copy.json()["name"] == "Round two" and copy.json()["media"]["made"] == 0


def test_a_rater_with_a_token_header_is_still_only_a_rater() -> None:
    study = make_ready_study(systems=2, prompts=1)
    from studies.lifecycle import launch_study

    launch_study(study=study)
    _, secret = _token(["read"])
    browser = _client(secret)
    start_rater(browser, study)
    session = browser.post(f"/api/r/{study.slug}/session", "{}", "application/json")
    assert session.status_code == 200
    assert browser.get(f"/api/v1/studies/{study.slug}").status_code == 200


def test_a_token_made_in_the_admin_is_shown_once_and_revoked_there(admin_client: Client) -> None:
    import re

    from django.contrib.auth import get_user_model

    study = make_ready_study(systems=2, prompts=1)
    admin_user = get_user_model()._default_manager.get(username="admin")
    page = admin_client.post(
        "/admin/studies/apitoken/add/",
        {"name": "CI", "user": admin_user.pk, "scopes": ["read"]},
        follow=True,
    ).content.decode()
    secret = re.search(r"(vd_[A-Za-z0-9_-]{20,})", page)
    assert secret is not None and "it is not shown again" in page
    token = ApiToken.objects.get(name="CI")
    assert secret.group(1) not in token.digest and token.digest != secret.group(1)
    assert _client(secret.group(1)).get(f"/api/v1/studies/{study.slug}").status_code == 200
    listing = admin_client.get("/admin/studies/apitoken/").content.decode()
    assert secret.group(1) not in listing and token.prefix in listing
    admin_client.post(
        "/admin/studies/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert _client(secret.group(1)).get(f"/api/v1/studies/{study.slug}").status_code == 401
    calls = admin_client.get("/admin/studies/apicall/").content.decode()
    assert f"/api/v1/studies/{study.slug}" in calls


def test_the_gate_answers_the_same_in_the_api_and_on_the_report(admin_client: Client) -> None:
    study = make_reported_study()
    body = study.reports.get().body
    assert body is not None
    board = body["leaderboard"]
    top, bottom = board["rows"][0]["system"], board["rows"][-1]["system"]
    _, secret = _token(["read"])
    api = _client(secret)
    url = f"/api/v1/studies/{study.slug}/gate"
    worse = api.get(url, {"candidate": bottom, "baseline": top}).json()
    better = api.get(url, {"candidate": top, "baseline": bottom, "mode": "better"}).json()
    assert worse["code"] in (0, 1, 2) and worse["verdict"] in ("pass", "fail", "undecided")
    # The reported study's first system is significantly above its last.
    assert board["significantly_better"][0][-1] is True
    assert worse["code"] == 1 and better["code"] == 0
    assert worse["low_elo"] is None or worse["low_elo"] <= worse["difference_elo"]
    assert api.get(url, {"candidate": top}).status_code == 400
    unknown = api.get(url, {"candidate": "nope", "baseline": top})
    assert unknown.status_code == 400 and "no system 'nope'" in unknown.json()["detail"]
    page = admin_client.get(
        f"/reports/studies/{study.slug}/", {"candidate": bottom, "baseline": top}
    ).content.decode()
    assert f"Gate: <strong>{worse['verdict']}</strong> (exit code {worse['code']})" in page


def test_a_study_without_votes_has_no_report_to_zip_and_says_so() -> None:
    from analysis.reports import ReportOptions, build_report
    from studies.lifecycle import launch_study

    study = launch_study(study=make_ready_study(systems=2, prompts=1))
    build_report(study=study, options=ReportOptions(criterion=study.criteria.get().key))
    _, secret = _token(["read"])
    empty = _client(secret).get(f"/api/v1/studies/{study.slug}/report.zip")
    assert empty.status_code == 404 and empty.json()["detail"]
