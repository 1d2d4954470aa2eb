"""Metrics in the admin: its piece of the study admin, a "Metrics" page (reference images,
runs, CSV import, the values), composed in config/admin.py; runs and values get their own
lists."""

import zipfile
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from analysis.core.metric_files import MetricFileError
from generation.exceptions import IngestError
from metrics import imports, runs
from metrics.compute import MetricsError
from metrics.extractors import EXTRACTORS
from metrics.measures import MEASURES
from metrics.models import AssetMeasure, MetricRun, MetricValue, ReferenceSet, RunKind
from studies.admin import StudyAdmin
from studies.models import Study


def _requester(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class ReferenceUploadForm(forms.Form):
    reference_set = forms.CharField(
        max_length=100, initial="reference", help_text="A new name adds a set."
    )
    images = MultipleFileField(
        widget=MultipleFileInput(),
        required=True,
        help_text="Real images (PNG, JPEG, WebP), or zips of them. FID needs thousands; "
        "fewer give wide intervals, which the report shows.",
    )


class ComputeForm(forms.Form):
    what = forms.ChoiceField(
        choices=[
            (RunKind.ASSET, "Per-asset measures (sharpness, colourfulness, noise, …)"),
            (RunKind.SET, "Set metrics (FD, KID, CMMD, precision/recall) against a reference"),
        ]
    )
    extractor = forms.ChoiceField(
        choices=[(name, label) for name, (label, _) in EXTRACTORS.items()], required=False
    )
    reference_set = forms.ModelChoiceField(queryset=ReferenceSet.objects.none(), required=False)

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reference_set"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ReferenceSet.objects.filter(study=study)


class ImportCsvForm(forms.Form):
    csv = forms.FileField(
        help_text="Columns system, metric, value, lower_is_better[, n][, asset]; asset is "
        "the public id from the study's export, for per-asset measures."
    )


class MetricsStudyAdmin(StudyAdmin):
    """Metrics' piece of the study admin (config/admin.py composes the pieces)."""

    def object_links(self, study: Study) -> list[tuple[str, str]]:
        url = reverse("admin:studies_study_metrics", args=[study.pk])
        return [*super().object_links(study), ("Metrics", url)]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:study_id>/metrics/",
                self.admin_site.admin_view(self.metrics_view),
                name="studies_study_metrics",
            )
        ]
        return own + super().get_urls()

    def metrics_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_change_permission(request, study):
            return HttpResponse(status=403)
        action = request.POST.get("action") if request.method == "POST" else None
        upload = ReferenceUploadForm(
            request.POST if action == "upload" else None,
            request.FILES if action == "upload" else None,
        )
        compute = ComputeForm(request.POST if action == "compute" else None, study=study)
        csv_form = ImportCsvForm(
            request.POST if action == "import" else None,
            request.FILES if action == "import" else None,
        )
        done = False
        if action == "upload" and upload.is_valid():
            done = self._upload(request, study, upload)
        elif action == "compute" and compute.is_valid():
            done = self._compute(request, study, compute)
        elif action == "import" and csv_form.is_valid():
            done = self._import(request, study, csv_form)
        if done:
            return HttpResponseRedirect(reverse("admin:studies_study_metrics", args=[study.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Metrics of {study.name}",
            "study": study,
            "opts": self.model._meta,
            "upload": upload,
            "compute": compute,
            "csv_form": csv_form,
            "reference_sets": [
                (s, s.images.count()) for s in ReferenceSet.objects.filter(study=study)
            ],
            "runs": MetricRun.objects.filter(study=study).order_by("-pk")[:10],
            "values": MetricValue.objects.filter(study=study).select_related("system"),
            "measures": AssetMeasure.objects.filter(asset__system__study=study).count(),
            "measure_kinds": MEASURES,
        }
        return TemplateResponse(request, "admin/metrics/metrics_page.html", context)

    def _upload(self, request: HttpRequest, study: Study, form: ReferenceUploadForm) -> bool:
        reference_set, _ = ReferenceSet.objects.get_or_create(
            study=study, name=form.cleaned_data["reference_set"].strip()
        )
        added = duplicates = 0
        refused: list[str] = []
        for upload in form.cleaned_data["images"]:
            try:
                if upload.name.lower().endswith(".zip"):
                    # Members are read one at a time: the archive is never held whole.
                    with zipfile.ZipFile(upload) as archive:
                        result = imports.add_reference_images(
                            reference_set=reference_set, files=imports.zip_members(archive)
                        )
                else:
                    result = imports.add_reference_images(
                        reference_set=reference_set, files=[(upload.name, upload.read())]
                    )
            except (zipfile.BadZipFile, IngestError) as exc:
                refused.append(f"{upload.name}: {exc}")
                continue
            added, duplicates = added + result.added, duplicates + result.duplicates
            refused += result.refused
        self.message_user(
            request,
            f"{reference_set.name}: {added} image(s) added, {duplicates} already there.",
            messages.SUCCESS if added else messages.WARNING,
        )
        for line in refused[:20]:
            self.message_user(request, f"Refused {line}", messages.ERROR)
        return True

    def _compute(self, request: HttpRequest, study: Study, form: ComputeForm) -> bool:
        kind = form.cleaned_data["what"]
        try:
            run = runs.request_run(
                study=study,
                kind=kind,
                extractor=form.cleaned_data["extractor"] if kind == RunKind.SET else "",
                reference_set=form.cleaned_data["reference_set"],
                requested_by=_requester(request),
            )
        except MetricsError as exc:
            form.add_error(None, str(exc))
            return False
        self.message_user(request, f"{run} queued on the gpu queue.", messages.SUCCESS)
        return True

    def _import(self, request: HttpRequest, study: Study, form: ImportCsvForm) -> bool:
        upload = form.cleaned_data["csv"]
        try:
            written = imports.import_metric_csv(
                study=study, data=upload.read(), name=upload.name or "upload.csv"
            )
        except MetricFileError as exc:
            form.add_error("csv", str(exc))
            return False
        self.message_user(request, f"{written} value(s) imported.", messages.SUCCESS)
        return True


@admin.register(MetricRun)
class MetricRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "kind", "extractor", "status", "values_written", "created_at"]
    list_filter = ["status", "kind", "study"]
    readonly_fields = [f.name for f in MetricRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(MetricValue)
class MetricValueAdmin(admin.ModelAdmin):
    list_display = ["system", "metric", "extractor", "value", "low", "high", "n_fake", "source"]
    list_filter = ["study", "metric", "source"]
    list_select_related = ["system"]
    exclude = ["replicates"]


@admin.register(ReferenceSet)
class ReferenceSetAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "created_at"]
    list_filter = ["study"]
