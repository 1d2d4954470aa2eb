"""A whole study driven by the ``verdict`` client, as a CI job would: against a real HTTP
server (the live server) and a real Celery worker, with a researcher's token. Apply a
study file, generate, upload outputs, wait for the media, launch, (simulated raters
vote), wait for the votes, fetch the report and the votes, and gate a release."""

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from analysis.simulated import add_simulated_votes
from studies import webhooks
from studies.models import ApiToken, Study, Webhook
from tests.factories import png_bytes
from tests.integration.test_worker import worker  # noqa: F401 - the fixture
from tests.receiver import receiver
from verdict_client.cli import main

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STUDY = """\
slug: pipeline
name: Release candidate against the current model
settings:
  comparisons_per_session: 12
  votes_per_comparison: 4
  practice_comparisons: 0
  attention_check_rate: 0
systems:
  - {name: current, backend: synthetic, backend_params: {width: 64, height: 64}}
  - {name: candidate, backend: synthetic, backend_params: {width: 64, height: 64, noise: 0.1}}
  - {name: old, backend: synthetic, backend_params: {width: 64, height: 64, noise: 0.4}}
prompts_file: prompts.txt
criteria:
  - key: quality
    question: Which image looks better?
"""
PROMPTS = ["a red circle", "two blue squares", "a yellow star at night"]


def _cli(url: str, token: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--url", url, "--token", token, *args], out=out)
    return code, out.getvalue()


def test_a_ci_job_drives_a_study_from_file_to_release_gate(
    live_server: Any,
    worker: Any,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    user = get_user_model()._default_manager.create_user("ci", password="x", is_staff=True)
    token = ApiToken(user=user, name="ci", scopes=["read", "write", "launch"])
    secret = token.new_secret()
    token.save()
    (tmp_path / "study.yaml").write_text(STUDY)
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    url = live_server.url

    def cli(*args: str) -> tuple[int, str]:
        return _cli(url, secret, *args)

    assert cli("apply", str(tmp_path / "study.yaml")) == (
        0,
        "pipeline: created study 'pipeline' (a draft); systems: 3 added; prompts: 3 added; "
        "criteria: 1 added\n",
    )
    assert cli("apply", str(tmp_path / "study.yaml"))[1] == "pipeline: no changes\n"
    code, text = cli("generate", "pipeline")
    assert code == 0 and "9 item(s) queued" in text, text
    assert (
        cli("wait", "pipeline", "--until", "media", "--timeout", "120", "--interval", "1")[0] == 0
    )
    # A fourth system whose outputs were made elsewhere: uploaded as a zip.
    archive = tmp_path / "api-model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        rows = [f"api/{i}.png,api-model,{text},0" for i, text in enumerate(PROMPTS)]
        z.writestr("manifest.csv", "file,system,prompt,seed\n" + "\n".join(rows) + "\n")
        for i in range(3):
            z.writestr(f"api/{i}.png", png_bytes(colour=(40 * i, 90, 200)))
    code, text = cli("upload", "pipeline", str(archive))
    assert code == 0 and "import job" in text, text
    code, text = cli("wait", "pipeline", "--until", "media", "--timeout", "120", "--interval", "1")
    assert code == 0, text
    status = json.loads(cli("--json", "status", "pipeline")[1])
    assert status["media"] == {"made": 12, "expected": 12}
    with receiver() as hook_server:
        hook = Webhook.objects.create(url=hook_server.url, events=["launched", "report_rebuilt"])
        assert cli("launch", "pipeline") == (0, "pipeline: live\n")
        deadline = time.monotonic() + 60
        while not hook_server.received and time.monotonic() < deadline:
            time.sleep(0.3)
        assert hook_server.received, "the worker did not deliver the launch event"
        got = hook_server.received[0]
        assert json.loads(got.body)["event"] == "launched"
        assert webhooks.verify(hook.secret, got.headers["X-Verdict-Timestamp"], got.body,
                               got.headers["X-Verdict-Signature"])  # fmt: skip

    study = Study.objects.get(slug="pipeline")
    add_simulated_votes(
        study=study,
        strengths={"candidate": 1.5, "current": 0.0, "old": -1.5, "api-model": 0.0},
        n_raters=40,
        careless_share=0.0,
        item_sd=0.3,
        seed=7,
    )
    assert cli("wait", "pipeline", "--until", "votes", "--timeout", "30", "--interval", "1")[0] == 0
    code, text = cli("report", "pipeline", "--timeout", "120", "--interval", "1")
    assert code == 0, text
    report = json.loads(text)
    ranked = [row["system"] for row in report["analysis"]["leaderboard"]["rows"]]
    assert ranked[0] == "candidate" and ranked[-1] == "old"
    code, text = cli("report", "pipeline", "--format", "csv")
    assert code == 0 and text.count("\n") > 100

    gate = ("gate", "--study", "pipeline", "--timeout", "60", "--interval", "1")
    code, text = cli(*gate, "--candidate", "candidate", "--baseline", "current", "--better")
    assert code == 0 and text.startswith("pass: the whole interval is above 0"), text
    code, text = cli(*gate, "--candidate", "old", "--baseline", "current")
    assert code == 1 and text.startswith("fail: old is significantly worse"), text
    code, text = cli("--json", *gate, "--candidate", "api-model", "--baseline", "current",
                     "--better")  # fmt: skip
    decision = json.loads(text)
    assert code == decision["code"] and decision["verdict"] in ("undecided", "fail", "pass")

    # What a pipeline must be able to tell apart from a verdict.
    assert _cli(url, "vd_wrong", "status", "pipeline")[0] == 5
    assert _cli("http://127.0.0.1:9", secret, "status", "pipeline")[0] == 4
    assert cli(*gate, "--candidate", "nope", "--baseline", "current")[0] == 5
