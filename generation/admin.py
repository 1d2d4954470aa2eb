"""Generation in the admin: its piece of the study admin ("Generate media", media import,
backend parameter checks, the study's jobs), composed in config/admin.py; jobs get their
own list with progress."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from generation import definitions, imports, jobs
from generation.backends import BACKENDS, get_backend
from generation.exceptions import BackendParamsError, GenerationError
from generation.models import GenerationJob, JobItem
from studies.admin import StudyAdmin
from studies.admin import SystemInline as BaseSystemInline
from studies.exceptions import StudyError
from studies.models import Study, StudyStatus, System


def _requester(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _param_docs(name: str) -> dict[str, str]:
    """What the parameters box shows for a backend: its defaults as the placeholder, each
    parameter's range and meaning as the tooltip (from the backend's own declaration)."""
    parameters = get_backend(name).parameters
    defaults = {p.name: p.default for p in parameters if p.default is not None}
    return {
        "placeholder": json.dumps(defaults),
        "title": "\n".join(p.describe() for p in parameters),
    }


def _job_progress(job: GenerationJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "status": job.get_status_display(),
        "done": job.done,
        "failed": job.failed,
        "expected": job.expected,
        "retried": job.retried,
        "text": f"Job #{job.pk}: {job.get_status_display().lower()}, {job.done} done, "
        f"{job.failed} failed of {job.expected} ({job.retried} retried)",
    }


class SystemForm(forms.ModelForm):
    backend = forms.ChoiceField(
        choices=[(name, name) for name in sorted(BACKENDS)], initial="synthetic"
    )

    class Meta:
        model = System
        fields = ["name", "backend", "backend_params", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = self.instance.backend if self.instance.pk else "synthetic"
        box = self.fields["backend_params"].widget
        box.attrs.update(_param_docs(chosen if chosen in BACKENDS else "synthetic"))
        # Every backend's, for the page's script to swap in when the choice changes.
        box.attrs["data-param-docs"] = json.dumps({name: _param_docs(name) for name in BACKENDS})
        if self.instance.pk and self.instance.assets.exists():
            # The stored media were made with these: changing them would make the record
            # lie about the media. A new system (or a duplicated study) takes new ones.
            for name in ("backend", "backend_params"):
                self.fields[name].disabled = True
                self.fields[
                    name
                ].help_text = (
                    "Media exist, made with these settings: add a new system to change them."
                )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "backend" in data and "backend_params" in data:
            try:
                get_backend(data["backend"]).validate_params(data["backend_params"] or {})
            except BackendParamsError as exc:
                self.add_error("backend_params", str(exc))
        return data


class SystemInline(BaseSystemInline):
    form = SystemForm

    class Media:
        js = ["js/system_params.js"]


class GenerationJobInline(admin.TabularInline):
    model = GenerationJob
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["link", "status", "progress", "created_at", "finished_at", "error"]
    readonly_fields = ["link", "status", "progress", "created_at", "finished_at", "error"]
    ordering = ["-created_at"]
    verbose_name_plural = "generation jobs"

    @admin.display(description="job")
    def link(self, job: GenerationJob) -> str:
        url = reverse("admin:generation_generationjob_change", args=[job.pk])
        return format_html('<a href="{}">#{}</a>', url, job.pk)

    @admin.display(description="done / failed / expected (retries)")
    def progress(self, job: GenerationJob) -> str:
        return f"{job.done} / {job.failed} / {job.expected} ({job.retried})"


class ImportMediaForm(forms.Form):
    archive = forms.FileField(
        required=False,
        help_text="A zip with manifest.csv (file, system, prompt, seed[, category]).",
    )
    server_path = forms.CharField(
        required=False,
        help_text="Or a folder or zip already on the server, with the same manifest.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("archive")) == bool(data.get("server_path")):
            raise forms.ValidationError("Give either an archive to upload or a server path.")
        return data


GENERATES = (StudyStatus.DRAFT, StudyStatus.READY)


class GenerationStudyAdmin(StudyAdmin):
    """Generation's piece of the study admin (config/admin.py composes the pieces)."""

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        # The system rows check their backend's parameters; the study's jobs follow.
        inlines = [
            SystemInline if inline is BaseSystemInline else inline
            for inline in super().get_inlines(request, obj)
        ]
        return [*inlines, GenerationJobInline]

    def object_links(self, study: Study) -> list[tuple[str, str]]:
        url = reverse("admin:studies_study_import_media", args=[study.pk])
        design = reverse("admin:studies_study_file", args=[study.pk])
        return [*super().object_links(study), ("Import media", url), ("Study file (YAML)", design)]

    def progress(self, study: Study) -> dict[str, Any]:
        recent = study.generation_jobs.order_by("-pk")[:5]
        return {**super().progress(study), "jobs": [_job_progress(job) for job in recent]}

    def object_notes(self, study: Study) -> list[tuple[str, list[str]]]:
        notes = [
            (f"Parameters of the {name} backend", [p.describe() for p in backend.parameters])
            for name, backend in sorted(BACKENDS.items())
        ]
        return [*super().object_notes(study), *notes]

    def object_actions(self, study: Study) -> list[tuple[str, str]]:
        # Media are made before raters see any: not while a pilot or the study runs.
        own = [("Generate media", "generate_media")] if study.status in GENERATES else []
        return [*own, *super().object_actions(study)]

    @admin.action(description="Generate media (missing outputs only)")
    def generate_media(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            try:
                job = jobs.start_generation(study=study, requested_by=_requester(request))
            except (GenerationError, StudyError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Generation job #{job.pk} for {study.name!r}: {job.expected} item(s) queued.",
                    messages.SUCCESS,
                )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:study_id>/import-media/",
                self.admin_site.admin_view(self.import_media_view),
                name="studies_study_import_media",
            ),
            path(
                "<int:study_id>/study-file/",
                self.admin_site.admin_view(self.study_file_view),
                name="studies_study_file",
            ),
        ]
        return own + super().get_urls()

    def study_file_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        """The study's design as a study file: ``manage.py apply_study`` takes it back."""
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            return HttpResponse(status=403)
        response = HttpResponse(
            definitions.to_yaml(definitions.export_definition(study)),
            content_type="application/yaml; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{study.slug}.yaml"'
        return response

    def import_media_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_change_permission(request, study):
            return HttpResponse(status=403)
        form = ImportMediaForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data["archive"]:
                    job = imports.import_upload(
                        study=study,
                        upload=form.cleaned_data["archive"],
                        requested_by=_requester(request),
                    )
                else:
                    job = imports.import_media(
                        study=study,
                        path=imports.server_path(form.cleaned_data["server_path"]),
                        requested_by=_requester(request),
                    )
            except (GenerationError, StudyError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Import job #{job.pk}: {job.expected} file(s) queued.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:studies_study_change", args=[study.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import media into {study.name}",
            "study": study,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/studies/study/import_media.html", context)


class JobItemInline(admin.TabularInline):
    model = JobItem
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["system", "prompt", "seed", "status", "attempts", "error"]
    readonly_fields = ["system", "prompt", "seed", "status", "attempts", "error"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobItem]:
        # Failed items first: they are what the researcher opens a job for.
        return (
            super()
            .get_queryset(request)
            .select_related("system", "prompt")
            .order_by("-status", "pk")
        )


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "status", "progress_bar", "retried", "created_at", "finished_at"]
    list_filter = ["status", "study"]
    list_select_related = ["study"]
    readonly_fields = [f.name for f in GenerationJob._meta.fields]
    inlines = [JobItemInline]
    actions = ["cancel", "retry_failed"]

    class Media:
        js = ["js/admin_progress.js"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_view),
                name="generation_generationjob_progress",
            )
        ]
        return own + super().get_urls()

    def progress_view(self, request: HttpRequest) -> HttpResponse:
        """The list's live progress: ?ids=1,2,3 → each job's counts."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.strip().isdigit()]
        found = GenerationJob.objects.filter(pk__in=ids[:200])
        return JsonResponse({"jobs": [_job_progress(job) for job in found]})

    @admin.display(description="progress")
    def progress_bar(self, job: GenerationJob) -> str:
        share = 100 * (job.done + job.failed) / job.expected if job.expected else 100
        return format_html(
            '<span data-job="{}"><progress value="{}" max="100" title="{} done, {} failed of {}">'
            "</progress> <span>{} / {}</span></span>",
            job.pk,
            round(share),
            job.done,
            job.failed,
            job.expected,
            job.done,
            job.expected,
        )

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        for job in queryset:
            try:
                jobs.cancel_job(job=job)
            except (GenerationError, StudyError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Cancelled job #{job.pk}.", messages.SUCCESS)

    @admin.action(description="Retry failed items (new job for what is still missing)")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        for study in Study.objects.filter(generation_jobs__in=queryset).distinct():
            try:
                job = jobs.start_generation(study=study, requested_by=_requester(request))
            except (GenerationError, StudyError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"Job #{job.pk}: {job.expected} item(s) queued.", messages.SUCCESS
                )
