import pytest
from django.core.management import call_command

from generation.demo import DEMO_SLUG
from generation.models import GenerationJob
from studies.models import Study

pytestmark = pytest.mark.django_db


def test_seed_demo_twice_seeds_nothing_twice(
    django_capture_on_commit_callbacks, settings, tmp_path
) -> None:
    settings.VAR_DIR = tmp_path
    with django_capture_on_commit_callbacks():
        call_command("seed_demo")
        call_command("seed_demo")
    study = Study.objects.get(slug=DEMO_SLUG)
    assert study.systems.count() == 4
    assert study.prompts.count() == 12
    assert set(study.prompts.values_list("category", flat=True)) == {
        "objects",
        "scenes",
        "counting",
    }
    assert study.criteria.count() == 2
    assert GenerationJob.objects.filter(study=study).count() == 1
    assert GenerationJob.objects.get(study=study).expected == 48


def test_demo_admin_password_is_printed_again_not_reset(settings, tmp_path, capsys) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--links-only")
    first = capsys.readouterr().out
    call_command("seed_demo", "--links-only")
    second = capsys.readouterr().out
    assert "password" in first and first == second
    from django.contrib.auth import authenticate

    password = (tmp_path / "demo-admin-password.txt").read_text().strip()
    assert authenticate(username="admin", password=password) is not None


def test_demo_practice_teaches_prompt_match_with_a_dropped_element(settings, tmp_path) -> None:
    """Practice for "matches the prompt" pairs an output that left out an element the
    prompt names with the reference output that has it; the explanation says which."""
    from generation import demo, jobs
    from studies.models import KnownPair

    settings.VAR_DIR = tmp_path
    study = demo.seed_demo_study(generate=False).study
    job = jobs.start_generation(study=study)
    for item_id, _queue in jobs.dispatch(job_id=job.pk):
        jobs.generate_asset(item_id=item_id)
    assert demo.add_known_pairs(study) > 0
    assert demo.add_known_pairs(study) == 0  # once
    alignment = study.criteria.get(key="alignment")
    for pair in KnownPair.objects.filter(criterion=alignment).select_related("better", "worse"):
        dropped = pair.worse.generation_meta["dropped_element"]
        assert dropped and pair.better.generation_meta["dropped_element"] is None
        assert pair.better.prompt_id == pair.worse.prompt_id
        assert pair.better.seed == pair.worse.seed
        assert f"leaves out the {dropped}" in pair.explanation
        assert alignment.question in pair.explanation
    # Corrupted copies teach quality only: a damaged copy matches the prompt as well.
    assert not alignment.copy_is_known_worse
    assert study.criteria.get(key="quality").copy_is_known_worse


def test_demo_prints_the_report_link_and_its_systems_have_costs(settings, tmp_path, capsys) -> None:
    """The readiness view has a trade-off to show: GPU systems dearer the better, and an
    API system with a hand-entered price; prompts carry the palette they are drawn in."""
    from generation import demo
    from studies.models import Prompt, System

    settings.VAR_DIR = tmp_path
    demo.seed_demo_study(generate=False)
    call_command("seed_demo", "--links-only")
    assert "/reports/studies/demo-shapes/" in capsys.readouterr().out
    systems = {s.name: s for s in System.objects.filter(study__slug="demo-shapes")}
    gpu = [
        systems[n].backend_params.get("simulated_gpu_seconds")
        for n in ("Pristine", "Soft focus", "Grainy")
    ]
    assert gpu == sorted(gpu, reverse=True) and all(gpu)
    assert systems["Off-prompt"].price_per_image is not None
    palettes = set(
        Prompt.objects.filter(study__slug="demo-shapes").values_list(
            "attributes__palette", flat=True
        )
    )
    assert palettes == {"warm", "cool"}


def test_the_video_demo_generates_clips_with_posters_and_launches(
    settings, tmp_path, capsys
) -> None:
    """The demo's video study: synthetic clips through the real ingest (H.264 MP4 at the
    systems' rate, a poster each), attention copies, a launch, and its links printed."""
    from generation import demo, jobs
    from generation.video import probe
    from studies import lifecycle
    from studies.models import Asset

    settings.VAR_DIR = tmp_path
    study = demo.seed_video_demo_study(generate=False).study
    assert study.modality == "video" and study.systems.count() == 4
    job = jobs.start_generation(study=study)
    for item_id, _queue in jobs.dispatch(job_id=job.pk):
        jobs.generate_asset(item_id=item_id)
    job.refresh_from_db()
    assert (job.done, job.failed) == (24, 0)
    outputs = Asset.objects.outputs().filter(system__study=study)
    assert outputs.count() == 24 and all(a.poster for a in outputs)
    first = outputs.first()
    assert first is not None
    info = probe(first.file.read())
    assert (info.codec, info.frames, info.fps, info.has_audio) == ("h264", 24, 12.0, False)
    assert first.duration_s == 2.0
    # Practice with the corrupted or frozen copies explains them as videos.
    from studies import content

    criterion = study.criteria.get()
    taught = content.study_content(study).known[criterion.pk]
    assert taught and all("the intact video" in known.explanation for known in taught)
    assert all("frozen" in known.explanation for known in taught)
    study.refresh_from_db()
    lifecycle.launch_study(study=study)
    call_command("seed_demo", "--links-only")
    out = capsys.readouterr().out
    assert "/r/demo-clips/" in out and "/r/demo-shapes/" not in out  # only what exists


def test_the_real_or_generated_demo_generates_launches_and_takes_simulated_raters(
    settings, tmp_path, capsys
) -> None:
    """The demo's real-or-generated study: its real set and systems generated through the
    real jobs (with attention copies), a launch, simulated raters, and its rater link."""
    from generation import demo, jobs
    from studies import lifecycle
    from studies.models import Asset, Assignment

    settings.VAR_DIR = tmp_path
    study = demo.seed_realness_demo_study(generate=False).study
    assert study.is_realness and study.systems.filter(is_real=True).count() == 1
    job = jobs.start_generation(study=study)
    for item_id, _queue in jobs.dispatch(job_id=job.pk):
        jobs.generate_asset(item_id=item_id)
    job.refresh_from_db()
    assert (job.done, job.failed) == (64, 0)  # 4 sets × 8 prompts × 2 seeds
    copies = Asset.objects.filter(system__study=study, kind="attention")
    assert copies.exists() and not copies.filter(system__is_real=True).exists()
    study.refresh_from_db()
    lifecycle.launch_study(study=study)
    call_command(
        "simulate_votes",
        demo.REALNESS_DEMO_SLUG,
        "--raters",
        "3",
        "--seed",
        "1",
        "--strength",
        "Clean renders=1.5",
        "--strength",
        "Grainy=-1.5",
    )
    judged = Assignment.objects.filter(study=study, kind="judgment", status="answered")
    assert judged.count() == 3 * 16
    call_command("seed_demo", "--links-only")
    out = capsys.readouterr().out
    assert "/r/demo-real/" in out and "/studies/demo-real/leaderboard" not in out
