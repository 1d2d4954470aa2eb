"""A researcher's preview of the real comparison page, before launch: a practice pair
with its feedback, sample pairs and an attention check, shown and answered on the page
raters get, with nothing stored. Each pair travels as a signed token naming what it
shows and where the tour stands, so the server keeps no state and writes no row."""

import random
from typing import Any

from django.core import signing
from django.urls import reverse

from studies import realness
from studies.content import PromptMedia, prompt_media, study_content
from studies.models import (
    REALNESS_ANSWERS,
    Answer,
    Asset,
    Assignment,
    AssignmentKind,
    Criterion,
    Prompt,
    Study,
)
from studies.serializers import screen_output

SALT = "verdict.preview"
# A short tour: the practice pair first, an attention check at the fourth.
SCREENS = 6
CHECK_AT = 3


class PreviewError(ValueError):
    """A token that is not a preview pair of this study."""


def _token(study: Study, position: int, **pair: Any) -> str:
    return signing.dumps({"study": study.pk, "n": position, **pair}, salt=SALT, compress=True)


def read_token(study: Study, token: str) -> dict[str, Any]:
    try:
        pair = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise PreviewError("Not a pair of this preview.") from None
    if not isinstance(pair, dict) or pair.get("study") != study.pk:
        raise PreviewError("Not a pair of this preview.")
    return pair


def _outputs(media: PromptMedia) -> list[tuple[int, Asset]]:
    return [
        (system, asset)
        for system, seeds in sorted(media.outputs.items())
        for asset in seeds.values()
    ]


def _sample_pair(study: Study, rng: random.Random) -> tuple[Asset, Asset] | None:
    prompt_ids = list(study.prompts.order_by("pk").values_list("pk", flat=True))
    rng.shuffle(prompt_ids)
    for prompt_id in prompt_ids:
        outputs = _outputs(prompt_media(study, prompt_id))
        systems = sorted({system for system, _ in outputs})
        if len(systems) >= 2:
            a, b = rng.sample(systems, 2)
            left = rng.choice([asset for system, asset in outputs if system == a])
            right = rng.choice([asset for system, asset in outputs if system == b])
            return left, right
    return None


def _screen(
    study: Study, position: int, criterion: Criterion, kind: str, left: Asset, right: Asset,
    expected: str = "", prompt: Prompt | None = None,
) -> list[Assignment]:  # fmt: skip
    row = Assignment(
        study=study,
        kind=kind,
        prompt=prompt or left.prompt,
        criterion=criterion,
        left_asset=left,
        right_asset=right,
        expected_answer=expected,
    )
    if expected in REALNESS_ANSWERS:
        row.exposure_ms = study.exposure_ms
    row.token = _token(
        study, position, kind=kind, left=left.pk, right=right.pk, expected=expected,
        criterion=criterion.pk,
    )  # fmt: skip
    return [row]


def _has_practice(study: Study) -> bool:
    content = study_content(study)
    return study.practice_comparisons > 0 and any(content.known[c.pk] for c in content.criteria)


def _realness_screen(study: Study, position: int) -> list[Assignment] | None:
    """A real-or-generated study's tour: a practice image, real and generated images in
    turn, and a damaged copy as the check, from the pool raters get (studies.realness)."""
    rng = random.Random(f"preview:{study.pk}:{position}")
    criterion = study_content(study).primary
    practice = position == 0 and study.practice_comparisons > 0
    if position == CHECK_AT and study.attention_check_rate > 0:
        check = realness.pick_check(study=study, seen=(), rng=rng)
        if check is not None:
            return _screen(study, position, criterion, AssignmentKind.ATTENTION, check.asset,
                           check.asset, check.truth)  # fmt: skip
    pick = realness.pick_practice(study=study, position=position, seen=(), seed=str(study.pk))
    if pick is None:
        return None
    kind = AssignmentKind.PRACTICE if practice else AssignmentKind.JUDGMENT
    return _screen(study, position, criterion, kind, pick.asset, pick.asset, pick.truth)


def preview_screen(study: Study, position: int) -> list[Assignment] | None:
    """The tour's screen at ``position``; None past its end or without media."""
    if position >= SCREENS:
        return None
    if study.is_realness:
        return _realness_screen(study, position)
    content = study_content(study)
    rng = random.Random(f"preview:{study.pk}:{position}")
    taught = [c for c in content.criteria if content.known[c.pk]]
    # As the study asks: a practice pair only if it has practice, a check only if checks.
    practice = position == 0 and _has_practice(study)
    check = position == CHECK_AT and study.attention_check_rate > 0
    if practice or (check and taught):
        criterion = taught[position % len(taught)]
        known = rng.choice(content.known[criterion.pk])
        better_left = rng.random() < 0.5
        left, right = (known.better, known.worse) if better_left else (known.worse, known.better)
        kind = AssignmentKind.PRACTICE if practice else AssignmentKind.ATTENTION
        expected = Answer.LEFT if better_left else Answer.RIGHT
        return _screen(study, position, criterion, kind, left, right, expected, known.prompt)
    pair = _sample_pair(study, rng)
    if pair is None:
        return None
    criterion = content.criteria[position % len(content.criteria)]
    if check and Answer.TIE in study.allowed_answers:
        # An identical-pair trap: the same medium on both sides, honestly a tie.
        return _screen(study, position, criterion, AssignmentKind.ATTENTION, pair[0], pair[0],
                       Answer.TIE)  # fmt: skip
    return _screen(study, position, criterion, AssignmentKind.COMPARISON, *pair)


def preview_session(study: Study, position: int) -> dict[str, Any]:
    """What the page's session API would answer, for the tour at ``position``."""
    practice = int(study.practice_comparisons > 0 if study.is_realness else _has_practice(study))
    screens = [
        screen for n in (position, position + 1) if (screen := preview_screen(study, n)) is not None
    ]
    return {
        # At the end of the tour the page goes back to the study's admin page.
        "next_url": reverse("admin:studies_study_change", args=[study.pk]),
        "comparisons": [screen_output(screen) for screen in screens],
        "progress": {
            "practice_done": min(position, practice),
            "practice_total": practice,
            "done": max(position - practice, 0),
            "total": SCREENS - practice,
        },
        "finished": not screens,
        "paused": False,
    }


def preview_answer(study: Study, token: str, answer: str) -> dict[str, Any]:
    """What the page's vote API would answer: feedback for the practice pair, and the
    next screens. Nothing is stored."""
    pair = read_token(study, token)
    if answer not in study.offered_answers:
        raise PreviewError(f"{answer!r} is not an answer this study offers.")
    feedback = None
    if pair["kind"] == AssignmentKind.PRACTICE and pair["expected"] in REALNESS_ANSWERS:
        feedback = {
            "correct": answer == pair["expected"],
            "expected": pair["expected"],
            "question": Criterion.objects.get(pk=pair["criterion"]).question,
            "explanation": realness.EXPLAINED[pair["expected"]],
        }
    elif pair["kind"] == AssignmentKind.PRACTICE:
        criterion = Criterion.objects.get(pk=pair["criterion"])
        content = study_content(study)
        explanation = next(
            (
                known.explanation
                for known in content.known.get(criterion.pk, [])
                if {known.better.pk, known.worse.pk} == {pair["left"], pair["right"]}
            ),
            "",
        )
        feedback = {
            "correct": answer == pair["expected"],
            "expected": pair["expected"],
            "question": criterion.question,
            "explanation": explanation,
        }
    return {
        "vote": {
            "client_id": "",
            "answer": answer,
            "answers": {token: answer},
            "correction": False,
        },
        "feedback": feedback,
        "session": preview_session(study, int(pair["n"]) + 1),
    }
