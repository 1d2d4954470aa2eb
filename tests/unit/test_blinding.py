"""A rater must never see system names or generation metadata anywhere."""

import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client

from generation import jobs
from studies import lifecycle
from studies.exceptions import StudyNotReady
from studies.models import Criterion, Prompt, Study, System
from tests.factories import make_ready_study

pytestmark = pytest.mark.django_db
SECRETS = ["ZephyrDiffusion", "QuillGAN", "synthetic", "13.37", "dropped_element", "fail_attempts"]
COMPARISON_KEYS = {
    "id",
    "prompt",
    "question",
    "questions",
    "left",
    "right",
    "practice",
    "single",
    "exposure_ms",
}
MEDIA_KEYS = {"url", "kind", "width", "height"}
# What an encoder writes into a video unless it is stripped: its name and version.
ENCODER_STRINGS = ["x264", "Lavf", "Lavc", "libx264", "encoder"]
MEDIA = {
    "image": (r"/media/a/[A-Za-z0-9_-]{16}\.png", b"\x89PNG", {}),
    "video": (r"/media/a/[A-Za-z0-9_-]{16}\.mp4", b"\x00\x00\x00", {"frames": 6, "fps": 6}),
}


def _generated_study(modality: str = "image") -> Study:
    study = Study.objects.create(
        name="Internal: ZephyrDiffusion-XL vs QuillGAN-7",
        slug="winter-images",
        modality=modality,
        comparisons_per_session=4,
        attention_check_rate=0.2,
        practice_comparisons=1,
    )
    for name, noise in (("ZephyrDiffusion-XL", 13.37), ("QuillGAN-7", 30.0)):
        System.objects.create(
            study=study,
            name=name,
            backend="synthetic",
            backend_params={"width": 64, "height": 64, "noise": noise, **MEDIA[modality][2]},
            description=f"{name} internal build",
        )
    for text in ("a red circle", "two blue squares", "a yellow star"):
        Prompt.objects.create(study=study, text=text, category="objects")
    Criterion.objects.create(
        study=study, key="quality", question="Which image looks better?", copy_is_known_worse=True
    )
    job = jobs.start_generation(study=study)
    for item_id in job.items.values_list("pk", flat=True):
        jobs.generate_asset(item_id=item_id)
    study.refresh_from_db()
    return lifecycle.launch_study(study=study)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


@pytest.mark.parametrize("modality", ["image", "video"])
def test_nothing_a_rater_can_reach_names_a_system(modality: str) -> None:
    study = _generated_study(modality)
    url_pattern, magic, _ = MEDIA[modality]
    browser = Client()
    seen: list[str] = []
    media_urls: set[str] = set()

    def fetch(response) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(f"{k}: {v}" for k, v in response.items()))
        if response.get("Location"):
            seen.append(response["Location"])
        if not response.streaming:
            seen.append(response.content.decode())

    def check_session(session: dict) -> None:  # type: ignore[type-arg]
        for comparison in session["comparisons"]:
            assert set(comparison) == COMPARISON_KEYS
            for side in ("left", "right"):
                medium = comparison[side]
                if modality == "video":
                    assert set(medium) == MEDIA_KEYS | {"poster"}
                    assert re.fullmatch(r"/media/a/[A-Za-z0-9_-]{16}-poster\.png", medium["poster"])
                    media_urls.add(medium["poster"])
                else:
                    assert set(medium) == MEDIA_KEYS
                assert re.fullmatch(url_pattern, medium["url"])
                media_urls.add(medium["url"])

    for url in (f"/r/{study.slug}/?PROLIFIC_PID={'a' * 24}", f"/r/{study.slug}/consent"):
        fetch(browser.get(url))
    fetch(browser.post(f"/r/{study.slug}/consent", {"decision": "agree"}))
    fetch(browser.get(f"/r/{study.slug}/instructions"))
    fetch(browser.post(f"/r/{study.slug}/instructions"))
    page = browser.get(f"/r/{study.slug}/compare")
    fetch(page)
    check_session(page.context["config"]["session"])
    # The page serves its pairs by POST.
    served = browser.post(f"/api/r/{study.slug}/session", "{}", content_type="application/json")
    fetch(served)
    session = served.json()
    # The other rater calls and their refusals: a load failure (the pair is replaced), a
    # flag, and bad requests of each kind, whose messages must not name anything either.
    api = f"/api/r/{study.slug}"

    def post(path: str, body: dict) -> Any:  # type: ignore[type-arg]
        response = browser.post(f"{api}/{path}", json.dumps(body), content_type="application/json")
        fetch(response)
        return response

    pair = session["comparisons"][0]["id"]
    check_session(session)
    session = post("load-failures", {"assignment": pair, "detail": "img error"}).json()["session"]
    check_session(session)
    flag = {"assignment": session["comparisons"][0]["id"], "reason": "broken", "side": "left"}
    session = post("flags", flag).json()["session"]
    wrong = {"assignment": pair, "answer": "sideways", "response_ms": 5, "client_id": "x"}
    for body in ({}, {"assignment": "nope", "answer": "left"}, wrong):
        assert 400 <= post("votes", body).status_code < 500
    fetch(browser.get(f"{api}/session"))
    fetch(browser.get("/media/a/no-such-file.png"))
    while not session["finished"]:
        check_session(session)
        pair = session["comparisons"][0]
        body = {
            "assignment": pair["id"],
            "answer": "left",
            "response_ms": 800,
            "client_id": str(uuid.uuid4()),
        }
        response = browser.post(
            f"/api/r/{study.slug}/votes", json.dumps(body), content_type="application/json"
        )
        fetch(response)
        session = response.json()["session"]
    for url in (f"/r/{study.slug}/about-you", f"/r/{study.slug}/done"):
        fetch(browser.get(url, follow=True))
    assert len(media_urls) >= 6
    for url in media_urls:
        response = browser.get(url)
        data = response.getvalue()
        assert data.startswith(b"\x89PNG" if url.endswith(".png") else magic), url
        headers = " ".join(f"{k}: {v}" for k, v in response.items())
        assert not _leaks(headers) and not _leaks(data.decode("latin-1")), url
        if url.endswith(".mp4"):
            assert data[4:8] == b"ftyp"
            assert not [s for s in ENCODER_STRINGS if s.encode() in data], url
        assert "Last-Modified" not in response and "Content-Disposition" not in response
    leaked = {secret for text in seen for secret in _leaks(text)}
    assert not leaked, f"rater-visible output names {leaked}"
    searched = sum(len(text) for text in seen)
    print(
        f"blinding audit ({modality}): {len(seen)} responses and headers ({searched:,} "
        f"characters) and {len(media_urls)} media files searched for {len(SECRETS)} secrets"
    )


def test_launch_refuses_a_slug_or_text_that_names_a_system() -> None:
    study = make_ready_study()
    system = study.systems.all()[0]
    system.name = "Midjourney v6"
    system.save()
    study.slug = "midjourney-v6-vs-others"
    study.instructions = "Compare Midjourney v6 with the others."
    study.save()
    with pytest.raises(StudyNotReady) as caught:
        lifecycle.launch_study(study=study)
    message = str(caught.value)
    assert "the slug names system 'Midjourney v6'" in message
    assert "the instructions names system 'Midjourney v6'" in message
