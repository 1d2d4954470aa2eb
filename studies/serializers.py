"""What the rater API reads and writes. Every rater-visible field is listed here: no
system, backend, parameter or generation metadata, and no kind that would tell an
attention check from a real pair."""

from typing import Any

from rest_framework import serializers

from studies.models import Answer, Asset, Assignment, AssignmentKind, FlagReason, FlagSide
from studies.votes import MAX_RESPONSE_MS

# Output: plain functions, not DRF serializers. The session is sent after every vote, and
# building DRF's nested field objects for it cost more than the vote's SQL (bench/load_votes.py).


def media_output(asset: Asset) -> dict[str, Any]:
    video = asset.media_type.startswith("video/")
    out: dict[str, Any] = {
        "url": asset.file.url,
        "kind": "video" if video else "image",
        "width": asset.width,
        "height": asset.height,
    }
    if video:
        # The first frame, shown until both players can start (opaque name, like the clip).
        out["poster"] = asset.poster.url if asset.poster else ""
    return out


def screen_output(screen: list[Assignment]) -> dict[str, Any]:
    """One pair on screen with its questions (one, or every criterion on one screen)."""
    first = screen[0]
    return {
        "id": first.token,
        "prompt": first.prompt.text,
        "question": first.criterion.question,
        "questions": [{"id": row.token, "question": row.criterion.question} for row in screen],
        "left": media_output(first.left_asset),
        "right": media_output(first.right_asset),
        # Practice pairs get feedback; attention checks look like any other pair.
        "practice": first.kind == AssignmentKind.PRACTICE,
    }


def session_output(state: Any) -> dict[str, Any]:
    """A SessionState: its open screens, progress and whether judging is over or paused."""
    progress = state.progress
    return {
        "comparisons": [screen_output(screen) for screen in state.screens],
        "progress": {
            "practice_done": progress.practice_done,
            "practice_total": progress.practice_total,
            "done": progress.done,
            "total": progress.total,
        },
        "finished": bool(state.finished),
        "paused": bool(state.paused),
    }


class AnswerInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    answer = serializers.ChoiceField(choices=Answer.choices)


class VoteInput(serializers.Serializer[Any]):
    """One answer (``assignment`` and ``answer``) or a screen's answers (``answers``)."""

    assignment = serializers.CharField(max_length=24, required=False)
    answer = serializers.ChoiceField(choices=Answer.choices, required=False)
    answers = serializers.ListField(child=AnswerInput(), required=False, max_length=20)
    response_ms = serializers.IntegerField(min_value=0, max_value=MAX_RESPONSE_MS)
    client_id = serializers.UUIDField()
    correction = serializers.BooleanField(default=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("answers"):
            return data
        if not data.get("assignment") or not data.get("answer"):
            raise serializers.ValidationError(
                "Give the pair and its answer (assignment, answer), or answers: a list of them."
            )
        return data


class FlagInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    side = serializers.ChoiceField(choices=FlagSide.choices, default=FlagSide.BOTH)


class LoadFailureInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    detail = serializers.CharField(max_length=300, allow_blank=True, default="")
