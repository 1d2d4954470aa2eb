"""The researcher API's generation side (studies.researcher_api has the rules): apply a
study file, read it back, upload media, start generation."""

from typing import Any

import yaml
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from generation import definitions, imports, jobs
from generation.exceptions import GenerationError
from studies.exceptions import StudyError
from studies.models import ApiScope, Study
from studies.researcher_api import ResearcherApi, study_state, token_user


class YamlParser(JSONParser):
    """A study file as sent: YAML (JSON is YAML too)."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return yaml.safe_load(stream.read().decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise exceptions.ParseError(f"Not valid YAML: {exc}") from None


class StudiesApi(ResearcherApi):
    """POST a study file (JSON, or YAML as application/yaml): the study of its slug is
    created (201) or brought to the file (200), all or nothing; ``?dry_run=1`` only
    lists the changes. A bad file is a 400 naming each problem."""

    scope = ApiScope.WRITE
    parser_classes = [JSONParser, YamlParser]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("dry_run", bool)],
        summary="Apply a study file",
    )
    def post(self, request: Request) -> Response:
        dry_run = request.query_params.get("dry_run", "") in ("1", "true", "yes")
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"detail": "Send a study file: a mapping."})
        try:
            applied = definitions.apply_definition(request.data, dry_run=dry_run)
        except definitions.DefinitionError as exc:
            raise exceptions.ValidationError({"problems": exc.problems}) from None
        body = {
            "created": applied.created,
            "dry_run": dry_run,
            "changes": applied.changes,
            "study": None if dry_run and applied.created else study_state(applied.study),
        }
        return Response(body, status=201 if applied.created and not dry_run else 200)


class DefinitionApi(ResearcherApi):
    scope = ApiScope.READ

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="A study's file, to apply back")
    def get(self, request: Request, slug: str) -> Response:
        return Response(definitions.export_definition(get_object_or_404(Study, slug=slug)))


class MediaApi(ResearcherApi):
    """POST a zip (field ``archive``) holding manifest.csv and the files: the same import
    as the admin's, through ingest and its limits; 202 with the import job."""

    scope = ApiScope.WRITE
    parser_classes = [MultiPartParser]

    @extend_schema(request=OpenApiTypes.BINARY, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        upload = request.FILES.get("archive")
        if upload is None:
            raise exceptions.ValidationError({"archive": ["Send the zip as the field archive."]})
        try:
            job = imports.import_upload(
                study=study, upload=upload, requested_by=token_user(request)
            )
        except (GenerationError, StudyError) as exc:
            raise exceptions.ValidationError({"archive": [str(exc)]}) from None
        return Response({"job": job.pk, "expected": job.expected}, status=202)


class GenerateApi(ResearcherApi):
    """POST: generate the study's missing media on the workers; 202 with the job."""

    scope = ApiScope.WRITE

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        try:
            job = jobs.start_generation(study=study, requested_by=token_user(request))
        except (GenerationError, StudyError) as exc:
            return Response({"detail": str(exc)}, status=409)
        return Response({"job": job.pk, "expected": job.expected}, status=202)
