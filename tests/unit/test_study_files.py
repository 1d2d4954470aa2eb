"""Study files: a study's design as YAML, checked against the published schema, applied
all or nothing (apply_study) and exported back (export_study)."""

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.definitions import (
    SCHEMA,
    DefinitionError,
    apply_definition,
    export_definition,
    read_definition,
)
from studies.models import Criterion, Prompt, Study, System
from tests.factories import make_live_study, make_ready_study

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

FILE = """\
slug: shapes-v2
name: Shapes, v2 against v1
settings:
  public_title: Which image is better?
  comparisons_per_session: 20
  reward_per_session: 2.50
  currency: GBP
systems:
  - name: shapes-v1
    backend: synthetic
    backend_params: {width: 64, height: 64}
  - name: shapes-v2
    backend: synthetic
    backend_params: {width: 64, height: 64, noise: 0.2}
prompts:
  - {text: a red circle, category: objects}
prompts_file: prompts.txt
criteria:
  - key: quality
    question: Which image looks better?
    copy_is_known_worse: true
  - key: alignment
    question: Which image matches the prompt better?
"""


def _write(tmp_path: Path, text: str = FILE) -> Path:
    (tmp_path / "prompts.txt").write_text("a blue square\n# not a prompt\na green triangle\n")
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def _apply(tmp_path: Path, text: str = FILE) -> list[str]:
    out = StringIO()
    call_command("apply_study", str(_write(tmp_path, text)), stdout=out)
    return out.getvalue().splitlines()


def test_a_file_makes_a_draft_study_and_applying_it_again_changes_nothing(
    tmp_path: Path,
) -> None:
    printed = _apply(tmp_path)
    assert printed[0] == "Applied to study 'shapes-v2':"
    assert "  - systems: 2 added" in printed and "  - prompts: 3 added" in printed
    study = Study.objects.get(slug="shapes-v2")
    assert study.status == "draft" and study.comparisons_per_session == 20
    assert study.reward_per_session == Decimal("2.50")
    assert list(study.criteria.order_by("order").values_list("key", flat=True)) == [
        "quality",
        "alignment",
    ]
    texts = list(study.prompts.order_by("pk").values_list("text", flat=True))
    assert texts == ["a red circle", "a blue square", "a green triangle"]
    assert study.systems.get(name="shapes-v2").backend_params["noise"] == 0.2
    stamp = study.updated_at
    assert _apply(tmp_path) == ["Study 'shapes-v2': no changes."]
    study.refresh_from_db()
    assert study.updated_at == stamp


def test_an_exported_study_applies_back_unchanged_and_copies_under_a_new_slug() -> None:
    study = make_ready_study(systems=3, prompts=2, criteria=2, reward_per_session="1.75")
    data = export_definition(study)
    assert apply_definition(data).changes == []
    # Through YAML text, as a file in a repository would hold it.
    again = yaml.safe_load(yaml.safe_dump(data))
    assert apply_definition(again).changes == []
    copy = {**again, "slug": "a-copy", "name": "A copy"}
    copy["settings"] = {
        k: v for k, v in copy["settings"].items() if not k.startswith("completion_code_")
    }
    made = apply_definition(copy)
    assert made.created
    theirs, ours = export_definition(study), export_definition(made.study)
    for part in ("systems", "prompts", "criteria"):
        assert ours[part] == theirs[part]
    same = {k for k in theirs["settings"] if not k.startswith("completion_code_")}
    assert {k: ours["settings"][k] for k in same} == {k: theirs["settings"][k] for k in same}


def _problems(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        apply_definition(data)
    return caught.value.problems


def test_bad_files_name_each_field_and_change_nothing(tmp_path: Path) -> None:
    study = make_ready_study(systems=2, prompts=1)
    before = export_definition(study)
    data = yaml.safe_load(yaml.safe_dump(before))
    data["settings"].update(attention_check_rate=2, comparisons_per_session="many", colour=1)
    problems = _problems(data)
    assert "settings.attention_check_rate: 2 is greater than the maximum of 0.5" in problems
    assert any(p.startswith("settings.comparisons_per_session:") for p in problems)
    assert any("'colour' was unexpected" in p for p in problems)
    data = yaml.safe_load(yaml.safe_dump(before))
    data["settings"]["instructions"] = "Look closely."
    data["systems"][1]["backend_params"] = {"width": 64, "style": "bold"}
    data["systems"].append(dict(data["systems"][0]))
    data["criteria"][0]["key"] = "not a slug!"
    problems = _problems(data)
    name = data["systems"][1]["name"]
    assert any(
        p.startswith(f"systems[{name!r}].backend_params: unknown synthetic") for p in problems
    )
    assert any("named twice" in p for p in problems)
    assert any(p.startswith("criteria['not a slug!'].key:") for p in problems)
    assert export_definition(Study.objects.get(pk=study.pk)) == before
    broken = tmp_path / "broken.yaml"
    broken.write_text("slug: [unclosed\n")
    with pytest.raises(DefinitionError, match="not valid YAML"):
        read_definition(broken)
    with pytest.raises(CommandError, match="Nothing applied"):
        call_command("apply_study", str(broken))


def test_media_fix_what_they_were_made_with() -> None:
    study = make_ready_study(systems=2, prompts=2)  # every system has media for every prompt
    data = export_definition(study)
    system, prompt = data["systems"][0], data["prompts"][0]
    changed = {
        **data,
        "systems": [{**system, "backend_params": {"width": 32}}, *data["systems"][1:]],
    }
    assert any(
        p.startswith(f"systems[{system['name']!r}]: its media were made with its backend")
        for p in _problems(changed)
    )
    fewer = {**data, "prompts": data["prompts"][1:]}
    assert f"prompts[{prompt['text']!r}]: has media, so it cannot be removed" in _problems(fewer)
    # Settings, and a description, are free to change.
    edited = {**data, "settings": {**data["settings"], "instructions": "Look closely."}}
    edited["systems"] = [{**system, "description": "our v1"}, *data["systems"][1:]]
    assert apply_definition(edited).changes == [
        "settings changed: instructions",
        f"systems[{system['name']!r}] changed: description",
    ]


def test_a_launched_study_keeps_its_design_rows_and_seeds() -> None:
    study = make_live_study(systems=2, prompts=2)
    data = export_definition(study)
    more = {**data, "prompts": [*data["prompts"], {"text": "a new prompt"}]}
    assert any("a launched study's prompts are fixed" in p for p in _problems(more))
    seeds = {**data, "settings": {**data["settings"], "seeds_per_prompt": 2}}
    assert any("seeds_per_prompt, modality and study_type are fixed" in p for p in _problems(seeds))
    longer = {**data, "settings": {**data["settings"], "comparisons_per_session": 30}}
    assert apply_definition(longer).changes == ["settings changed: comparisons_per_session"]


def test_rows_a_draft_file_no_longer_names_are_removed_and_a_dry_run_writes_nothing(
    tmp_path: Path,
) -> None:
    _apply(tmp_path)
    data = read_definition(_write(tmp_path))
    data["criteria"] = data["criteria"][1:]
    data["systems"].append({"name": "shapes-v3", "backend": "synthetic"})
    dry = apply_definition(data, dry_run=True)
    assert dry.changes == [
        "systems: 1 added",
        "criteria['alignment'] changed: order",
        "criteria: 1 removed",
    ]
    assert System.objects.filter(name="shapes-v3").count() == 0
    assert Criterion.objects.filter(key="quality").exists()
    apply_definition(data)
    study = Study.objects.get(slug="shapes-v2")
    assert list(study.criteria.values_list("key", flat=True)) == ["alignment"]
    assert study.criteria.get().order == 0
    assert study.systems.filter(name="shapes-v3").exists()
    assert Prompt.objects.filter(study=study).count() == 3


def test_the_published_schema_is_the_one_the_code_checks_against() -> None:
    published = json.loads((ROOT / "schemas" / "study.schema.json").read_text())
    assert published == SCHEMA, (
        "run: python manage.py export_study --schema -o schemas/study.schema.json"
    )
    out = StringIO()
    call_command("export_study", "--schema", stdout=out)
    assert json.loads(out.getvalue()) == SCHEMA


def test_the_study_page_links_its_study_file(admin_client: Any, client: Any) -> None:
    from django.urls import reverse

    study = make_ready_study(systems=2, prompts=1)
    url = reverse("admin:studies_study_file", args=[study.pk])
    page = admin_client.get(reverse("admin:studies_study_change", args=[study.pk]))
    assert url in page.content.decode()
    got = admin_client.get(url)
    assert got["Content-Disposition"] == f'attachment; filename="{study.slug}.yaml"'
    assert apply_definition(yaml.safe_load(got.content)).changes == []
    assert client.get(url).status_code == 302  # to the login page


def test_a_file_that_leaves_out_a_system_s_backend_is_checked_against_the_row_s(
    settings: Any,
) -> None:
    study = make_ready_study(systems=1, prompts=1)
    system = study.systems.get()
    # Valid for the import backend, not for the synthetic default.
    drop = Path(settings.IMPORT_ROOT) / "outputs"
    drop.mkdir(parents=True)
    params = {"path": str(drop)}
    System.objects.filter(pk=system.pk).update(backend="import", backend_params=params)
    data = export_definition(study)
    data["systems"] = [
        {"name": system.name, "backend_params": params, "description": "kept its backend"}
    ]
    assert apply_definition(data).changes == [f"systems[{system.name!r}] changed: description"]
    assert System.objects.get(pk=system.pk).backend == "import"
