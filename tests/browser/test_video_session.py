"""A video study in headless Debian Chromium: synthetic clips generated and ingested for
real, two players kept in step over ten loops, answers opening once both have played."""

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser

from generation import jobs
from studies import lifecycle
from studies.models import Asset, Criterion, Modality, Prompt, Study, System, Vote
from tests.browser.flow import enter_by_prolific_link

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FPS = 12
FRAMES = 12  # one second a loop
ENABLED = "#answers:not(.waiting) button[data-answer=left]:enabled"


def _video_study() -> Study:
    study = Study.objects.create(
        name="Browser video",
        slug="browser-video",
        public_title="Clip comparison",
        modality=Modality.VIDEO,
        status="draft",
        comparisons_per_session=3,
        attention_check_rate=0,
        practice_comparisons=0,
        min_viewing_ms=0,
    )
    for name, params in (("clean", {}), ("flickering", {"flicker": 0.5}), ("blurred", {"blur": 3})):
        System.objects.create(
            study=study,
            name=name,
            backend_params={"width": 96, "height": 64, "frames": FRAMES, "fps": FPS, **params},
        )
    for text in ("a red circle", "two blue squares"):
        Prompt.objects.create(study=study, text=text)
    Criterion.objects.create(study=study, key="quality", question="Which video looks better?")
    job = jobs.start_generation(study=study)
    for item_id in job.items.values_list("pk", flat=True):
        jobs.generate_asset(item_id=item_id)
    study.refresh_from_db()
    return lifecycle.launch_study(study=study)


# Samples |left − right| of the players' clocks on every animation frame while both play
# (not while either seeks: the loop's restart), until the leader has ended ten times.
DRIFT = """async (loops) => {
  const a = document.getElementById("left-video"), b = document.getElementById("right-video");
  const leader = a.duration >= b.duration ? a : b;
  let ended = 0;
  leader.addEventListener("ended", () => { ended += 1; });
  const samples = [];
  await new Promise((resolve) => {
    const tick = () => {
      if (!a.paused && !b.paused && !a.seeking && !b.seeking) {
        samples.push(Math.abs(a.currentTime - b.currentTime));
      }
      if (ended >= loops) resolve();
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  return { samples, ended };
}"""


def test_a_video_pair_plays_in_step_and_is_judged_after_playing_through(
    live_server, browser: Browser
) -> None:
    study = _video_study()
    outputs = Asset.objects.outputs().filter(system__study=study)
    assert outputs.count() == 6 and {a.media_type for a in outputs} == {"video/mp4"}
    assert all(a.poster for a in outputs)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    enter_by_prolific_link(page, live_server.url, study)
    page.wait_for_function(
        "() => !document.getElementById('left-video').paused"
        " && !document.getElementById('right-video').paused"
    )
    assert page.locator("#left-img").is_hidden() and page.locator("#video-controls").is_visible()
    # Before both have played through, a key is acknowledged, not taken.
    page.keyboard.press("1")
    page.wait_for_selector("#status:has-text('Answers open in a moment')")
    assert not Vote.objects.exists()
    page.wait_for_selector(ENABLED, timeout=15_000)
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "compare-video.png"))

    drift = page.evaluate(DRIFT, 10)
    assert drift["ended"] >= 10
    samples = drift["samples"]
    assert len(samples) > 100, len(samples)
    worst = max(samples)
    print(
        f"drift over {drift['ended']} loops: {len(samples)} samples, "
        f"median {sorted(samples)[len(samples) // 2] * 1000:.1f} ms, max {worst * 1000:.1f} ms"
    )
    assert worst <= 1 / FPS, f"drift {worst * 1000:.1f} ms is more than one frame"

    # Space pauses both (the follower snapped to the leader); R starts both from the start.
    page.keyboard.press(" ")
    page.wait_for_function(
        "() => document.getElementById('left-video').paused"
        " && document.getElementById('right-video').paused"
    )
    times = page.evaluate(
        "() => ['left-video', 'right-video'].map((id) => document.getElementById(id).currentTime)"
    )
    assert abs(times[0] - times[1]) <= 1 / FPS
    page.keyboard.press("r")
    page.wait_for_function(
        "() => ['left-video', 'right-video'].every((id) => {"
        " const v = document.getElementById(id); return !v.paused && v.currentTime < 0.5; })"
    )
    page.keyboard.press("2")
    page.wait_for_function(
        "() => document.getElementById('progress').getAttribute('aria-valuenow') === '1'"
    )
    vote = Vote.objects.select_related("assignment__right_asset").get()
    assert vote.answer == "right" and vote.assignment.right_asset.media_type == "video/mp4"
    assert not errors, errors


def test_the_video_page_on_a_phone_stacks_the_players_above_the_answer_bar(
    live_server, browser: Browser
) -> None:
    study = _video_study()
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    enter_by_prolific_link(page, live_server.url, study)
    page.wait_for_selector(ENABLED, timeout=15_000)
    page.screenshot(path=str(Path(settings.VAR_DIR) / "screenshots" / "compare-video-phone.png"))
    left = page.locator("#left-video").bounding_box()
    right = page.locator("#right-video").bounding_box()
    assert left and right and right["y"] >= left["y"] + left["height"]
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    bottom = page.locator("#right-video").bounding_box()
    bar = page.locator("#answers").bounding_box()
    assert bottom and bar and bottom["y"] + bottom["height"] <= bar["y"]
