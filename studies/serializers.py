"""What the rater API reads and writes. Every rater-visible field is listed here: no
system, backend, parameter or generation metadata, and no kind that would tell an
attention check from a real pair."""

from typing import Any

from rest_framework import serializers

from studies.models import Answer, Asset, Assignment, AssignmentKind
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


class ComparisonOutput(serializers.Serializer[Assignment]):
    id = serializers.CharField(source="token")
    prompt = serializers.CharField(source="prompt.text")
    question = serializers.CharField(source="criterion.question")
    left = MediaOutput(source="left_asset")
    right = MediaOutput(source="right_asset")
    # Practice pairs get feedback; attention checks look like any other pair.
    practice = serializers.SerializerMethodField()

    def get_practice(self, assignment: Assignment) -> bool:
        return assignment.kind == AssignmentKind.PRACTICE


class ProgressOutput(serializers.Serializer[Any]):
    practice_done = serializers.IntegerField()
    practice_total = serializers.IntegerField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class SessionOutput(serializers.Serializer[Any]):
    comparisons = ComparisonOutput(many=True, source="assignments")
    progress = ProgressOutput()
    finished = serializers.BooleanField()
    paused = serializers.BooleanField()


class VoteInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    answer = serializers.ChoiceField(choices=Answer.choices)
    response_ms = serializers.IntegerField(min_value=0, max_value=MAX_RESPONSE_MS)
    client_id = serializers.UUIDField()
    correction = serializers.BooleanField(default=False)


class LoadFailureInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    detail = serializers.CharField(max_length=300, allow_blank=True, default="")
