"""What the rater API reads and writes. Every rater-visible field is listed here: no
system, backend, parameter or generation metadata, and no kind that would tell an
attention check from a real pair."""

from typing import Any

from rest_framework import serializers

from studies.models import Answer, Asset, Assignment, AssignmentKind, FlagReason, FlagSide
from studies.votes import MAX_RESPONSE_MS


class MediaOutput(serializers.Serializer[Asset]):
    url = serializers.SerializerMethodField()
    kind = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()

    def get_url(self, asset: Asset) -> str:
        return asset.file.url

    def get_kind(self, asset: Asset) -> str:
        return "video" if asset.media_type.startswith("video/") else "image"


class QuestionOutput(serializers.Serializer[Assignment]):
    id = serializers.CharField(source="token")
    question = serializers.CharField(source="criterion.question")


class ScreenOutput(serializers.Serializer[list[Assignment]]):
    """One pair on screen with its questions (one, or every criterion on one screen)."""

    def to_representation(self, screen: list[Assignment]) -> dict[str, Any]:
        first = screen[0]
        return {
            "id": first.token,
            "prompt": first.prompt.text,
            "question": first.criterion.question,
            "questions": [QuestionOutput(row).data for row in screen],
            "left": MediaOutput(first.left_asset).data,
            "right": MediaOutput(first.right_asset).data,
            # Practice pairs get feedback; attention checks look like any other pair.
            "practice": first.kind == AssignmentKind.PRACTICE,
        }


class ProgressOutput(serializers.Serializer[Any]):
    practice_done = serializers.IntegerField()
    practice_total = serializers.IntegerField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class SessionOutput(serializers.Serializer[Any]):
    comparisons = ScreenOutput(many=True, source="screens")
    progress = ProgressOutput()
    finished = serializers.BooleanField()
    paused = serializers.BooleanField()


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
