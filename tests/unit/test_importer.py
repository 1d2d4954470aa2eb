import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generation import imports, jobs
from generation.backends.importer import read_manifest
from generation.exceptions import ImportArchiveError, IngestError
from generation.models import ItemStatus, JobStatus
from studies.models import Asset, StudyStatus
from tests.factories import make_study, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def drop(settings: Any) -> Path:
    """The import folder: imports read folders and zips only under it."""
    root = Path(settings.IMPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


MANIFEST = "file,system,prompt,seed,category\n"


def _zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def _good_archive(drop: Path) -> Path:
    manifest = MANIFEST + (
        "out/a1.png,API model A,a red circle,7,objects\n"
        "out/a2.png,API model A,a blue square,7,objects\n"
        "out/b1.jpg,API model B,a red circle,7,objects\n"
        "out/b2.png,API model B,a blue square,7,objects\n"
    )
    jpeg = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (16, 16), (0, 0, 255)).save(jpeg, "JPEG")
    return _zip(
        drop / "outputs.zip",
        {
            "manifest.csv": manifest,
            "out/a1.png": png_bytes(colour=(1, 2, 3)),
            "out/a2.png": png_bytes(colour=(4, 5, 6)),
            "out/b1.jpg": jpeg.getvalue(),
            "out/b2.png": png_bytes(colour=(7, 8, 9)),
        },
    )


def _run_items(job_id: int) -> None:
    from generation.models import JobItem

    for item_id in JobItem.objects.filter(job_id=job_id).values_list("pk", flat=True):
        jobs.generate_asset(item_id=item_id)


def test_zip_import_creates_systems_prompts_and_assets(drop: Path) -> None:
    study = make_study()
    job = imports.import_media(study=study, path=_good_archive(drop))
    assert job.expected == 4
    assert sorted(study.systems.values_list("name", "backend")) == [
        ("API model A", "import"),
        ("API model B", "import"),
    ]
    assert sorted(study.prompts.values_list("text", "category")) == [
        ("a blue square", "objects"),
        ("a red circle", "objects"),
    ]
    _run_items(job.pk)
    job.refresh_from_db()
    study.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.SUCCEEDED, 4)
    assert study.status == StudyStatus.READY
    outputs = Asset.objects.outputs().filter(system__study=study)
    assert outputs.count() == 4
    assert set(outputs.values_list("seed", flat=True)) == {7}
    assert set(outputs.values_list("media_type", flat=True)) == {"image/png"}  # JPEG re-encoded


def test_folder_import_reads_files_in_place(drop: Path) -> None:
    folder = drop / "drop"
    (folder / "imgs").mkdir(parents=True)
    (folder / "imgs" / "x.png").write_bytes(png_bytes())
    (folder / "manifest.csv").write_text(MANIFEST + "imgs/x.png,Model X,a cat,0,\n")
    study = make_study()
    job = imports.import_media(study=study, path=imports.server_path(str(folder)))
    _run_items(job.pk)
    assert Asset.objects.outputs().filter(system__study=study, system__name="Model X").count() == 1


def test_bad_manifest_lines_are_all_named_and_nothing_is_imported(drop: Path) -> None:
    manifest = MANIFEST + (
        "a.png,M,p1,0,\n"
        "missing.png,M,p2,0,\n"
        "a.png,M,p1,0,\n"
        "a.png,M,p3,minus one,\n"
        ",M,p4,0,\n"
        "../../etc/passwd,M,p5,0,\n"
    )
    archive = _zip(drop / "bad.zip", {"manifest.csv": manifest, "a.png": png_bytes()})
    study = make_study()
    with pytest.raises(ImportArchiveError) as caught:
        imports.import_media(study=study, path=archive)
    problems = caught.value.problems
    assert problems == [
        "line 3: file 'missing.png' is not in bad.zip",
        "line 4: same system, prompt and seed as line 2",
        "line 5: seed 'minus one' is not a whole number >= 0",
        "line 6: empty file",
        "line 7: file '../../etc/passwd' is not in bad.zip",
    ]
    assert not study.systems.exists() and not study.prompts.exists()


def test_archive_without_manifest_or_columns_is_refused(drop: Path) -> None:
    with pytest.raises(ImportArchiveError, match="no manifest.csv"):
        read_manifest(_zip(drop / "a.zip", {"x.png": png_bytes()}))
    with pytest.raises(ImportArchiveError, match=r"missing column\(s\) \['seed'\]"):
        read_manifest(_zip(drop / "b.zip", {"manifest.csv": "file,system,prompt\n"}))
    not_zip = drop / "c.zip"
    not_zip.write_text("plain text")
    with pytest.raises(ImportArchiveError, match="neither a folder nor a zip"):
        read_manifest(not_zip)


def test_bad_image_fails_only_its_own_item(drop: Path) -> None:
    manifest = MANIFEST + "ok.png,M,p1,0,\nfake.png,M,p2,0,\n"
    archive = _zip(
        drop / "mixed.zip",
        {"manifest.csv": manifest, "ok.png": png_bytes(), "fake.png": b"not an image"},
    )
    study = make_study()
    job = imports.import_media(study=study, path=archive)
    item_ids = list(job.items.order_by("pk").values_list("pk", flat=True))
    jobs.generate_asset(item_id=item_ids[0])
    with pytest.raises(IngestError, match="not an image"):
        jobs.generate_asset(item_id=item_ids[1])
    jobs.record_failure(item_id=item_ids[1], error="IngestError: not an image")
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.FAILED, 1, 1)
    assert "not an image" in job.error
    assert job.items.get(pk=item_ids[1]).status == ItemStatus.FAILED


def test_existing_system_with_another_backend_is_not_overwritten(drop: Path) -> None:
    study = make_study()
    study.systems.create(name="API model A", backend="synthetic")
    with pytest.raises(ImportArchiveError, match="already exists with the synthetic backend"):
        imports.import_media(study=study, path=_good_archive(drop))


def test_uploads_must_be_zip_files(drop: Path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(ImportArchiveError, match="not a .zip file"):
        imports.save_upload(upload=SimpleUploadedFile("outputs.tar", b"x"))
    saved = imports.save_upload(upload=SimpleUploadedFile("Outputs.ZIP", b"zipdata"))
    assert saved.read_bytes() == b"zipdata" and saved.suffix == ".zip"


def test_server_paths_outside_the_import_folder_are_refused(drop: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "manifest.csv").write_text(MANIFEST)
    with pytest.raises(ImportArchiveError, match="outside the import folder"):
        imports.server_path(str(outside))
    with pytest.raises(ImportArchiveError, match="outside the import folder"):
        imports.server_path(str(drop / ".." / "elsewhere"))
    # A link inside the folder that leads out of it is followed, then refused.
    (drop / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ImportArchiveError, match="outside the import folder"):
        imports.server_path(str(drop / "link"))
    with pytest.raises(ImportArchiveError, match="does not exist"):
        imports.server_path(str(drop / "missing"))
    inside = drop / "ok"
    inside.mkdir()
    assert imports.server_path(str(inside)) == inside.resolve()


def test_a_systems_import_path_cannot_point_outside_the_import_folder(tmp_path: Path) -> None:
    from generation.backends.importer import ImportBackend
    from generation.exceptions import BackendParamsError

    with pytest.raises(BackendParamsError, match="outside the import folder"):
        ImportBackend().validate_params({"path": str(tmp_path)})
    with pytest.raises(BackendParamsError, match="outside the import folder"):
        ImportBackend().validate_params({"path": "/etc"})


def test_a_refused_upload_leaves_nothing_behind(drop: Path, admin_client: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    study = make_study()
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("manifest.csv", MANIFEST + "missing.png,M,p,0,\n")
    url = reverse("admin:studies_study_import_media", args=[study.pk])
    page = admin_client.post(url, {"archive": SimpleUploadedFile("outputs.zip", bad.getvalue())})
    assert page.status_code == 200 and "Nothing imported" in page.content.decode()
    assert list(drop.iterdir()) == []  # the saved upload was deleted again
    assert not study.systems.exists()


def test_oversize_uploads_and_member_floods_are_refused(
    drop: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from generation.backends import importer

    settings.IMPORT_MAX_BYTES = 10
    with pytest.raises(ImportArchiveError, match="above the limit of 10"):
        imports.save_upload(upload=SimpleUploadedFile("big.zip", b"x" * 11))
    assert list(drop.iterdir()) == []
    monkeypatch.setattr(importer, "MAX_MEMBERS", 2)
    flood = _zip(drop / "flood.zip", {"manifest.csv": MANIFEST, "a.png": b"", "b.png": b""})
    with pytest.raises(ImportArchiveError, match="more than 2 files"):
        read_manifest(flood)


def test_archive_members_cannot_reach_outside_the_archive(drop: Path) -> None:
    from generation.backends.importer import ImportSource
    from generation.exceptions import BackendError

    archive = _zip(
        drop / "evil.zip",
        {"manifest.csv": MANIFEST + "../evil.png,M,p,0,\n", "../evil.png": png_bytes()},
    )
    source = ImportSource(archive)
    try:
        for name in ("../evil.png", "/etc/passwd", "a/../../b.png"):
            with pytest.raises(BackendError, match="unsafe path"):
                source.read(name)
    finally:
        source.close()
    assert not (drop.parent / "evil.png").exists()  # nothing is ever extracted


def _mp4(colour: tuple[int, int, int], frames: int = 4) -> bytes:
    from generation.video import encode_mp4

    return encode_mp4(np.full((frames, 16, 24, 3), colour, np.uint8), 4)


def test_a_video_study_imports_videos_through_the_same_path(drop: Path) -> None:
    manifest = MANIFEST + (
        "clips/a.mp4,Video model A,a red circle,0,\n"
        "clips/b.MP4,Video model B,a red circle,0,\n"
        "clips/c.mov,Video model B,a blue square,0,\n"
    )
    archive = _zip(
        drop / "clips.zip",
        {
            "manifest.csv": manifest,
            "clips/a.mp4": _mp4((200, 30, 30)),
            "clips/b.MP4": _mp4((30, 200, 30), frames=8),
            "clips/c.mov": _mp4((30, 30, 200)),
        },
    )
    study = make_study(modality="video")
    job = imports.import_media(study=study, path=archive)
    _run_items(job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.SUCCEEDED, 3)
    outputs = Asset.objects.outputs().filter(system__study=study).order_by("duration_s")
    assert list(outputs.values_list("media_type", "duration_s")) == [
        ("video/mp4", 1.0),
        ("video/mp4", 1.0),
        ("video/mp4", 2.0),
    ]
    assert all(asset.poster.name.endswith("-poster.png") for asset in outputs)


def test_files_of_the_other_medium_or_unknown_kinds_are_refused(drop: Path) -> None:
    manifest = MANIFEST + "a.png,M,p1,0,\nb.mp4,M,p2,0,\nc.gif,M,p3,0,\n"
    files: dict[str, bytes | str] = {
        "manifest.csv": manifest,
        "a.png": png_bytes(),
        "b.mp4": _mp4((1, 2, 3)),
    }
    archive = _zip(drop / "mixed.zip", {**files, "c.gif": b"GIF89a"})
    with pytest.raises(ImportArchiveError) as caught:
        read_manifest(archive)
    assert caught.value.problems == [
        "line 4: file 'c.gif' is not one of .jpeg, .jpg, .mov, .mp4, .png, .webm, .webp"
    ]
    archive = _zip(
        drop / "both.zip", {**files, "manifest.csv": MANIFEST + "a.png,M,p1,0,\nb.mp4,M,p2,0,\n"}
    )
    with pytest.raises(ImportArchiveError) as caught:
        imports.import_media(study=make_study(modality="video"), path=archive)
    assert caught.value.problems == ["line 2: 'a.png' is not a video, and this is a video study"]
    with pytest.raises(ImportArchiveError) as caught:
        imports.import_media(study=make_study(), path=archive)
    assert caught.value.problems == ["line 3: 'b.mp4' is not an image, and this is an image study"]


def test_hostile_videos_fail_their_own_items_plainly_and_leave_no_file(
    drop: Path, settings: Any
) -> None:
    """A truncated clip, a text file named .mp4, an image named .mp4 and a clip over the
    length limit, beside a good one: each bad item fails with a researcher's message (no
    FFmpeg text), the good one is stored, and no stored file is left that no row names."""
    settings.INGEST_MAX_VIDEO_SECONDS = 1.5
    good = _mp4((10, 200, 10))
    manifest = MANIFEST + "".join(
        f"{name},M,prompt {i},0,\n"
        for i, name in enumerate(["good.mp4", "cut.mp4", "text.mp4", "png.mp4", "long.mp4"])
    )
    archive = _zip(
        drop / "hostile.zip",
        {
            "manifest.csv": manifest,
            "good.mp4": good,
            "cut.mp4": good[: len(good) // 2],
            "text.mp4": b"#!/bin/sh\necho not a video\n",
            "png.mp4": png_bytes(),
            "long.mp4": _mp4((10, 10, 200), frames=40),
        },
    )
    study = make_study(modality="video")
    media_root = Path(settings.MEDIA_ROOT)
    before = {p for p in media_root.rglob("*") if p.is_file()}
    job = imports.import_media(study=study, path=archive)
    messages = {}
    for item in job.items.select_related("prompt").order_by("pk"):
        try:
            jobs.generate_asset(item_id=item.pk)
        except IngestError as exc:
            jobs.record_failure(item_id=item.pk, error=f"IngestError: {exc}")
            messages[item.prompt.text] = str(exc)
    job.refresh_from_db()
    assert (job.done, job.failed) == (1, 4)
    assert set(messages) == {"prompt 1", "prompt 2", "prompt 3", "prompt 4"}
    assert "damaged or truncated" in messages["prompt 1"]
    assert "not a video" in messages["prompt 2"]
    assert "this is an image" in messages["prompt 3"]
    assert "above the limit of 1.5 s" in messages["prompt 4"]
    for message in messages.values():
        assert "ffmpeg" not in message.lower() and "errno" not in message.lower(), message
    stored = {p for p in media_root.rglob("*") if p.is_file()} - before
    named = {
        media_root / name
        for asset in Asset.objects.filter(system__study=study)
        for name in (asset.file.name, asset.poster.name)
        if name
    }
    # The good clip, its attention copy and their posters; nothing of the refused ones.
    assert stored == named and len(named) == 4


def test_a_real_image_set_comes_in_as_an_import_and_a_realness_study_launches(drop: Path) -> None:
    """The documented path: the systems generate, the real photographs are uploaded as an
    import zip (their captions the study's prompts), the set is marked real, and the
    study launches and serves them."""
    from studies import lifecycle
    from studies.models import Criterion, Prompt, System
    from tests.factories import answer_pairs, make_judging_rater

    study = make_study(study_type="realness", practice_comparisons=0, comparisons_per_session=4)
    System.objects.create(study=study, name="Model", backend_params={"width": 32, "height": 32})
    for text in ("a red circle", "a blue square"):
        Prompt.objects.create(study=study, text=text)
    Criterion.objects.create(study=study, key="realness", question="Real or generated?")
    _run_items(jobs.start_generation(study=study).pk)
    rows = [
        (f"photos/{k}.png", prompt, k)
        for k, prompt in enumerate(["a red circle", "a blue square"] * 2)
    ]
    manifest = MANIFEST + "".join(f"{f},Real photographs,{p},{k},\n" for f, p, k in rows)
    archive = _zip(
        drop / "photos.zip",
        {"manifest.csv": manifest, **{f: png_bytes(colour=(k, 9, 9)) for f, _, k in rows}},
    )
    job = imports.import_media(study=study, path=archive)
    _run_items(job.pk)
    real = System.objects.get(study=study, name="Real photographs")
    assert real.backend == "import" and Asset.objects.outputs().filter(system=real).count() == 4
    assert any("no real images" in p for p in lifecycle.launch_problems(study=study))
    real.is_real = True
    real.save()
    study.refresh_from_db()
    assert lifecycle.launch_problems(study=study) == []
    lifecycle.launch_study(study=study)
    rater = make_judging_rater(study)
    assert answer_pairs(rater) == 4
    shown = Asset.objects.filter(pk__in=rater.assignments.values("left_asset"))
    assert shown.filter(system=real).count() == 2  # half real, by the default share
