"""What the rater API reads and writes. Every rater-visible field is listed here: no
system, backend, parameter or generation metadata, and no kind that would tell an
attention check from a real pair."""

import json
import uuid
from functools import lru_cache
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage
from django.db.models.fields.files import FieldFile
from rest_framework import serializers

from studies.models import (
    REALNESS_ANSWERS,
    Answer,
    Asset,
    Assignment,
    AssignmentKind,
    FlagReason,
    FlagSide,
)
from studies.votes import MAX_RESPONSE_MS

# Output: plain functions, not DRF serializers. The session is sent after every vote, and
# building DRF's nested field objects for it cost more than the vote's SQL (bench/load_votes.py).


def file_url(file: FieldFile) -> str:
    """The file's URL; on the file system it depends only on the name, so it is worked
    out once per file (four per vote, 14 µs each). Other storages may sign their URLs
    with an expiry: asked every time."""
    storage = file.storage
    if isinstance(storage, FileSystemStorage) and file.name:
        return _filesystem_url(storage, storage.base_url, file.name)
    return file.url


@lru_cache(maxsize=65_536)
def _filesystem_url(storage: Storage, base_url: str, name: str) -> str:
    return storage.url(name)


def media_output(asset: Asset) -> dict[str, Any]:
    video = asset.media_type.startswith("video/")
    out: dict[str, Any] = {
        "url": file_url(asset.file),
        "kind": "video" if video else "image",
        "width": asset.width,
        "height": asset.height,
    }
    if video:
        # The first frame, shown until both players can start (opaque name, like the clip).
        out["poster"] = file_url(asset.poster) if asset.poster else ""
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
        # Real or generated: one image (on both sides of the row), shown for this long.
        "single": first.expected_answer in REALNESS_ANSWERS,
        "exposure_ms": first.exposure_ms or 0,
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


_ANSWERS = frozenset(Answer.values)


def _plain_token(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 24 and value == value.strip()


def plain_vote_input(body: bytes) -> dict[str, Any] | None:
    """A well-formed vote in its usual form, read without DRF's field objects (building
    and running them was a tenth of a vote's CPU): what ``VoteInput`` would return for
    it. None for anything else, which ``VoteInput`` then judges and words the errors of;
    so this only has to be right about what it accepts."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    response_ms, correction = data.get("response_ms"), data.get("correction", False)
    if type(response_ms) is not int or not 0 <= response_ms <= MAX_RESPONSE_MS:
        return None
    if type(correction) is not bool or not isinstance(data.get("client_id"), str):
        return None
    try:
        client_id = uuid.UUID(data["client_id"])
    except ValueError:
        return None
    out: dict[str, Any] = {
        "response_ms": response_ms,
        "client_id": client_id,
        "correction": correction,
    }
    answers = data.get("answers")
    if answers:
        if not isinstance(answers, list) or len(answers) > 20:
            return None
        if "assignment" in data or "answer" in data:  # VoteInput checks those too
            return None
        for item in answers:
            if not isinstance(item, dict) or not _plain_token(item.get("assignment")):
                return None
            if item.get("answer") not in _ANSWERS:
                return None
        out["answers"] = [{"assignment": a["assignment"], "answer": a["answer"]} for a in answers]
        return out
    if not _plain_token(data.get("assignment")) or data.get("answer") not in _ANSWERS:
        return None
    if "answers" in data:
        if answers != []:  # a falsy non-list: VoteInput's error
            return None
        out["answers"] = []
    out.update(assignment=data["assignment"], answer=data["answer"])
    return out


class FlagInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    side = serializers.ChoiceField(choices=FlagSide.choices, default=FlagSide.BOTH)


class LoadFailureInput(serializers.Serializer[Any]):
    assignment = serializers.CharField(max_length=24)
    detail = serializers.CharField(max_length=300, allow_blank=True, default="")
