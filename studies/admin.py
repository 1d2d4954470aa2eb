"""Researcher admin: studies with their systems, prompts and criteria; media; raters; votes.

``StudyAdmin`` here is the studies app's piece of the study admin; config/admin.py composes
it with the other apps' pieces and registers the result. Each piece adds its URLs, and
its links and buttons for the study page as data (``object_links``, ``object_actions``),
which one template draws.
"""

import json
import tempfile
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from studies import assignments, exports, lifecycle, preview, raters
from studies.designs import duplicate_study
from studies.exceptions import StudyError
from studies.models import (
    PAIRWISE_ANSWERS,
    ApiCall,
    ApiScope,
    ApiToken,
    Asset,
    Assignment,
    Criterion,
    DeliveryStatus,
    Flag,
    FlagDecision,
    KnownPair,
    Prompt,
    Rater,
    Study,
    StudyQuerySet,
    StudyStatus,
    System,
    Vote,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    default_allowed_answers,
)
from studies.pay import pay_estimate
from studies.prompts import import_prompts, parse_prompt_file
from studies.views import compare_config

_COMPACT = {
    models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 50})},
    models.JSONField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})},
}


def _in_use(obj: System | Prompt | Criterion) -> tuple[int, int]:
    """(pairs served, votes) that name this system, prompt or criterion."""
    if isinstance(obj, System):
        pairs = Assignment.objects.filter(
            models.Q(left_asset__system=obj) | models.Q(right_asset__system=obj)
        )
    elif isinstance(obj, Prompt):
        pairs = Assignment.objects.filter(prompt=obj)
    else:
        pairs = Assignment.objects.filter(criterion=obj)
    return pairs.count(), Vote.objects.filter(assignment__in=pairs).count()


class KeepWhatRatersSaw(admin.TabularInline):
    """A row raters have seen cannot be deleted (its votes would lose what they answered):
    say so in a sentence, not with Django's list of protected assignments."""

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)

        class Form(formset.form):  # type: ignore[name-defined, misc]
            def hand_clean_DELETE(self) -> None:
                try:
                    super().hand_clean_DELETE()
                except forms.ValidationError as exc:
                    if exc.code != "deleting_protected":
                        raise
                    pairs, votes = _in_use(self.instance)
                    noun = self.instance._meta.verbose_name
                    raise forms.ValidationError(
                        f"This {noun} cannot be deleted: raters have seen it in {pairs} "
                        f"pair{'s' if pairs != 1 else ''} and answered {votes} of them, and "
                        "those answers must keep what they were about. Pause or close the "
                        "study instead, or duplicate the study without it.",
                        code="deleting_protected",
                    ) from None

        formset.form = Form
        return formset


class SystemInline(KeepWhatRatersSaw):
    model = System
    extra = 0
    fields = ["name", "is_real", "backend", "backend_params", "description"]
    formfield_overrides = _COMPACT


class PromptInline(KeepWhatRatersSaw):
    model = Prompt
    extra = 0
    fields = ["text", "category"]
    formfield_overrides = {models.TextField: {"widget": forms.TextInput(attrs={"size": 90})}}


class CriterionInline(KeepWhatRatersSaw):
    model = Criterion
    extra = 0
    fields = ["key", "question", "order", "copy_is_known_worse"]


class KnownPairInline(admin.TabularInline):
    """Practice-grade material: pairs with a known better answer to one criterion."""

    model = KnownPair
    extra = 0
    fields = ["criterion", "prompt", "better", "worse", "explanation"]
    raw_id_fields = ["prompt", "better", "worse"]
    formfield_overrides = _COMPACT


class PromptUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with columns text[,category], or text: one prompt a line."
    )
    default_category = forms.CharField(
        required=False, max_length=100, help_text="Used where a row names no category."
    )


class StudyForm(forms.ModelForm):
    """The study form: the answers offered as checkboxes (stored as the JSON list)."""

    allowed_answers = forms.TypedMultipleChoiceField(
        choices=[(answer.value, answer.label) for answer in PAIRWISE_ANSWERS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Left and right are always offered; tie and both bad are optional. "
        "(A real-or-generated study offers real and generated instead.)",
    )

    class Meta:
        model = Study
        fields = ["allowed_answers"]  # the admin adds the rest from its fieldsets

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("allowed_answers", default_allowed_answers())

    def clean_allowed_answers(self) -> list[str]:
        chosen = set(self.cleaned_data["allowed_answers"])
        # In the order raters see them, whatever order the boxes were ticked.
        return [answer.value for answer in PAIRWISE_ANSWERS if answer.value in chosen]


class StudyAdmin(admin.ModelAdmin):
    form = StudyForm

    class Media:
        js = ["js/admin_progress.js"]

    list_display = ["name", "modality", "status", "n_systems", "n_prompts", "assets", "votes"]
    list_filter = ["status", "modality"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["status", "created_at", "updated_at"]
    inlines = [SystemInline, PromptInline, CriterionInline, KnownPairInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["launch", "pause", "close", "export_votes"]
    # Every setting of the design, grouped by what it is for (a test checks none is left
    # out of the form).
    fieldsets = [
        (None, {"fields": ["name", "slug", "study_type", "modality", "status"]}),
        (
            "What raters see",
            {
                "description": "Raters never see the study's name, its systems or their "
                "settings: only these texts.",
                "fields": ["public_title", "content_warning", "consent", "instructions"],
            },
        ),
        (
            "Media",
            {
                "description": "What each system makes for each prompt.",
                "fields": ["seeds_per_prompt"],
            },
        ),
        (
            "Rating design",
            {
                "description": "How pairs are served and answered.",
                "fields": [
                    "comparisons_per_session",
                    "votes_per_comparison",
                    "allowed_answers",
                    "criteria_on_one_screen",
                    "pair_selection",
                    "stop_when_settled",
                    "min_viewing_ms",
                    "assignment_timeout_minutes",
                ],
            },
        ),
        (
            "Real or generated",
            {
                "description": "For real-or-generated studies only: raters see one image "
                "at a time and answer real or generated. Mark one system “real images” and "
                "upload the real photographs to it as an import; sessions mix them with the "
                "systems' outputs at this share.",
                "fields": ["real_share", "exposure_ms"],
            },
        ),
        (
            "Pilot",
            {
                "description": "“Launch pilot” opens the study to this many raters; then "
                "the study page summarises their time, agreement and flags, and their "
                "votes are kept with the full launch or discarded.",
                "fields": ["pilot_raters"],
            },
        ),
        (
            "Practice and quality checks",
            {
                "description": "Practice pairs teach the task with feedback; attention checks "
                "(known-answer pairs and identical pairs) catch careless answers.",
                "fields": [
                    "practice_comparisons",
                    "attention_check_rate",
                    "max_failed_attention_checks",
                ],
            },
        ),
        (
            "End of the session",
            {
                "description": "The optional questionnaire, the completion codes per outcome "
                "and where raters are sent with their code (e.g. Prolific).",
                "fields": [
                    "ask_questionnaire",
                    "completion_code_completed",
                    "completion_code_failed_checks",
                    "completion_code_no_consent",
                    "completion_code_stopped",
                    "completion_redirect_url",
                ],
            },
        ),
        (
            "Pay",
            {
                "description": "The study page estimates the hourly pay from the reward and "
                "the session's length (measured once real raters have answered) and warns "
                "below the minimum.",
                "fields": [
                    "reward_per_session",
                    "currency",
                    "minimum_hourly_pay",
                    "seconds_per_comparison",
                ],
            },
        ),
        (
            "Exports and personal data",
            {
                "description": "What vote exports carry about participants (the data "
                "dictionary is linked on the study page).",
                "fields": ["external_ids_in_exports", "personal_data_retention_days"],
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return cast(StudyQuerySet, super().get_queryset(request)).with_progress()

    # The counts below come from StudyQuerySet.with_progress().
    @admin.display(description="systems", ordering="n_systems")
    def n_systems(self, study: Study) -> int:
        return int(getattr(study, "n_systems", 0))

    @admin.display(description="prompts", ordering="n_prompts")
    def n_prompts(self, study: Study) -> int:
        return int(getattr(study, "n_prompts", 0))

    @admin.display(description="media made / expected")
    def assets(self, study: Study) -> str:
        return f"{getattr(study, 'n_assets', 0)} / {getattr(study, 'asset_target', 0)}"

    @admin.display(description="votes / target")
    def votes(self, study: Study) -> str:
        return f"{getattr(study, 'n_votes', 0)} / {getattr(study, 'vote_target', 0)}"

    def _apply(self, request: HttpRequest, queryset: QuerySet[Study], service, verb: str) -> None:  # type: ignore[no-untyped-def]
        for study in queryset:
            try:
                service(study=study)
            except StudyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"{verb} {study.name!r}.", messages.SUCCESS)
            pay = pay_estimate(study=study)
            launching = service in (lifecycle.launch_study, lifecycle.launch_pilot)
            if launching and pay is not None and pay.below_minimum:
                self.message_user(request, f"{study.name}: {pay.sentence()}", messages.WARNING)

    @admin.action(description="Launch (open to raters)")
    def launch(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        self._apply(request, queryset, lifecycle.launch_study, "Launched")

    def save_model(self, request: HttpRequest, obj: Study, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "stop_when_settled" in form.changed_data and not obj.stop_when_settled:
            again = assignments.serve_settled_again(study=obj)
            if again:
                noun = "criteria are" if again != 1 else "criterion is"
                self.message_user(
                    request,
                    f"Stopping turned off: {again} settled {noun} served again.",
                    messages.SUCCESS,
                )

    @admin.action(description="Launch a pilot (up to its number of pilot raters)")
    def launch_pilot(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        self._apply(request, queryset, lifecycle.launch_pilot, "Started the pilot of")

    @admin.action(description="Discard the pilot's votes (back to ready)")
    def discard_pilot(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            try:
                n = lifecycle.discard_pilot(study=study)
            except StudyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request,
                f"Discarded the pilot of {study.name!r}: {n} vote{'s' if n != 1 else ''} "
                "set aside (kept for audit, counted nowhere). The study is ready to change, "
                "pilot again or launch.",
                messages.SUCCESS,
            )

    @admin.action(description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        self._apply(request, queryset, lifecycle.pause_study, "Paused")

    @admin.action(description="Close")
    def close(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        self._apply(request, queryset, lifecycle.close_study, "Closed")

    @admin.action(description="Duplicate (design, systems, prompts, criteria; no media or votes)")
    def duplicate(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            copy = duplicate_study(study=study)
            url = reverse("admin:studies_study_change", args=[copy.pk])
            self.message_user(
                request,
                format_html(
                    'Duplicated {} as <a href="{}">{}</a> (a draft without media or votes).',
                    study.name,
                    url,
                    copy.name,
                ),
                messages.SUCCESS,
            )

    @admin.action(description="Export votes (one CSV per study; a zip for several)")
    def export_votes(
        self, request: HttpRequest, queryset: QuerySet[Study]
    ) -> HttpResponse | StreamingHttpResponse:
        stamp = exports.stamp_now()
        studies = list(queryset.order_by("slug"))
        if len(studies) == 1:
            study = studies[0]
            response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
                exports.iter_votes_csv(study=study), content_type="text/csv; charset=utf-8"
            )
            name = exports.export_name(study, stamp)
        else:
            name = f"votes-{stamp}.zip"
            handle = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it)
            exports.write_votes_zip(handle, studies=studies, stamp=stamp)
            handle.seek(0)
            response = FileResponse(handle, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def dictionary_view(self, request: HttpRequest) -> HttpResponse:
        """The votes export's data dictionary (Markdown)."""
        response = HttpResponse(
            exports.dictionary_markdown(), content_type="text/markdown; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{exports.DICTIONARY_NAME}"'
        return response

    def object_links(self, study: Study) -> list[tuple[str, str]]:
        """The study page's links, (label, URL); each app's piece adds its own."""
        return [
            ("Preview as a rater", reverse("admin:studies_study_preview", args=[study.pk])),
            ("Import prompts", reverse("admin:studies_study_import_prompts", args=[study.pk])),
            ("Export dictionary", reverse("admin:studies_study_export_dictionary")),
        ]

    def preview_view(self, request: HttpRequest, study_id: int, action: str = "") -> HttpResponse:
        """The real comparison page for a researcher, before launch: practice, sample pairs
        and an attention check, answered without storing anything (studies.preview)."""
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            return HttpResponse(status=403)
        if not action:
            urls = {
                name: reverse("admin:studies_study_preview_api", args=[study.pk, name])
                for name in ("session", "votes", "load_failures", "flags")
            }
            config = compare_config(
                request, study, session=preview.preview_session(study, 0), urls=urls
            )
            unit = "image" if study.is_realness else "pair"
            context = {"study": study, "config": config, "preview": True, "unit": unit}
            return TemplateResponse(request, "studies/rater/compare.html", context)
        if request.method != "POST":
            return HttpResponse(status=405)
        try:
            body = json.loads(request.body or b"{}")
            if action == "session":
                return JsonResponse(preview.preview_session(study, 0))
            token = str(body.get("assignment", ""))
            if action == "votes":
                return JsonResponse(
                    preview.preview_answer(study, token, str(body.get("answer", ""))), status=201
                )
            # A flag or a load failure: the pair is replaced by the next one.
            position = int(preview.read_token(study, token)["n"]) + 1
            return JsonResponse({"session": preview.preview_session(study, position)})
        except (ValueError, preview.PreviewError) as exc:
            return JsonResponse({"detail": str(exc)}, status=400)

    def progress(self, study: Study) -> dict[str, Any]:
        """What the study page updates while it is open (progress_view); each app's piece
        adds its own."""
        counted = Study.objects.with_progress().get(pk=study.pk)
        return {
            "status": counted.get_status_display(),
            "assets": self.assets(counted),
            "votes": self.votes(counted),
        }

    def progress_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_view_permission(request, study):
            return HttpResponse(status=403)
        return JsonResponse(self.progress(study))

    def object_notes(self, study: Study) -> list[tuple[str, list[str]]]:
        """Reference notes for the study page, (title, lines), folded; each app's piece
        adds its own."""
        return []

    def object_panels(self, study: Study) -> list[tuple[str, list[str]]]:
        """Summaries shown open on the study page, (title, lines); each app's piece adds
        its own."""
        return []

    def object_actions(self, study: Study) -> list[tuple[str, str]]:
        """The study page's buttons, (label, list action to run on it); each app's piece
        adds its own."""
        by_status = {
            StudyStatus.DRAFT: [("Launch", "launch")],
            StudyStatus.READY: [("Launch pilot", "launch_pilot"), ("Launch", "launch")],
            StudyStatus.PILOT: [
                ("Launch, keeping the pilot's votes", "launch"),
                ("Discard the pilot's votes", "discard_pilot"),
                ("Close", "close"),
            ],
            StudyStatus.LIVE: [("Pause", "pause"), ("Close", "close")],
            StudyStatus.PAUSED: [("Launch again", "launch"), ("Close", "close")],
        }
        return [*by_status.get(StudyStatus(study.status), []), ("Duplicate", "duplicate")]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:study_id>/import-prompts/",
                self.admin_site.admin_view(self.import_prompts_view),
                name="studies_study_import_prompts",
            ),
            path(
                "export-dictionary/",
                self.admin_site.admin_view(self.dictionary_view),
                name="studies_study_export_dictionary",
            ),
            path(
                "<int:study_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="studies_study_preview",
            ),
            path(
                "<int:study_id>/preview/<str:action>",
                self.admin_site.admin_view(self.preview_view),
                name="studies_study_preview_api",
            ),
            path(
                "<int:study_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="studies_study_progress",
            ),
            path(
                "<int:study_id>/do/<str:action>/",
                self.admin_site.admin_view(self.button_view),
                name="studies_study_button",
            ),
        ]
        return own + super().get_urls()

    def button_view(self, request: HttpRequest, study_id: int, action: str) -> HttpResponse:
        """A study page button (POST only): the list action of that name, run on this one
        study with the same checks and messages, then back to the page. Only the buttons
        the page offers for the study's status run (never Django's bulk delete)."""
        study = get_object_or_404(Study, pk=study_id)
        if request.method != "POST":
            return HttpResponse("Use the buttons on the study page.", status=405)
        found = self.get_actions(request).get(action)
        if found is None or action not in {name for _, name in self.object_actions(study)}:
            return HttpResponse("No such button on this study's page.", status=404)
        if not self.has_change_permission(request, study):
            return HttpResponse(status=403)
        run = found[0]
        run(self, request, Study.objects.filter(pk=study.pk))
        return HttpResponseRedirect(reverse("admin:studies_study_change", args=[study.pk]))

    def import_prompts_view(self, request: HttpRequest, study_id: int) -> HttpResponse:
        study = get_object_or_404(Study, pk=study_id)
        if not self.has_change_permission(request, study):
            return HttpResponse(status=403)
        form = PromptUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = parse_prompt_file(
                    name=upload.name,
                    content=upload.read(),
                    default_category=form.cleaned_data["default_category"],
                )
                result = import_prompts(study=study, rows=rows)
            except StudyError as exc:
                form.add_error("file", str(exc))
            else:
                self.message_user(
                    request,
                    f"Imported {result.created} prompt(s); "
                    f"{result.already_there} were already there.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:studies_study_change", args=[study.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import prompts into {study.name}",
            "study": study,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/studies/study/import_prompts.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, object] | None = None,
    ) -> HttpResponse:
        study = self.get_object(request, object_id)
        if study is not None:
            extra_context = {
                **(extra_context or {}),
                "media_grid": Asset.objects.preview_grid(study),
                "launch_problems": lifecycle.launch_problems(study=study),
                "asset_progress": self.assets(study),
                "vote_progress": self.votes(study),
                "object_links": self.object_links(study),
                "object_actions": self.object_actions(study),
                "object_notes": self.object_notes(study),
                "object_panels": self.object_panels(study),
                "pay": pay_estimate(study=study),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "public_id", "system", "prompt", "seed", "kind", "size"]
    list_filter = ["kind", "system__study", "system"]
    list_select_related = ["system", "prompt"]
    search_fields = ["public_id", "sha256", "prompt__text"]
    readonly_fields = [f.name for f in Asset._meta.fields] + ["thumbnail", "operations"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # The generation log's operational figures, named as a reader of the readiness view
    # knows them (the rest of generation_meta stays in its own field).
    OPERATIONS = (
        ("seconds", "wall seconds (this item's share)"),
        ("latency_s", "wall seconds of the backend call"),
        ("gpu_seconds", "GPU-seconds"),
        ("peak_gpu_memory_mb", "peak GPU memory (MB)"),
        ("batch_size", "batch size"),
        ("device", "device"),
        ("attempt", "attempt"),
    )

    @admin.display(description="how it was made")
    def operations(self, asset: Asset) -> str:
        meta = asset.generation_meta or {}
        rows = [(label, meta[key]) for key, label in self.OPERATIONS if meta.get(key) is not None]
        versions = meta.get("versions")
        if isinstance(versions, dict):
            rows.append(("library versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
        if not rows:
            return "—"
        return format_html_join(
            "", "<div><strong>{}</strong>: {}</div>", ((label, value) for label, value in rows)
        )

    @admin.display(description="")
    def thumbnail(self, asset: Asset) -> str:
        if asset.media_type.startswith("image/") or asset.poster:
            return format_html(
                '<img src="{}" width="64" height="64" loading="lazy" alt="">', asset.still_url
            )
        return asset.media_type

    @admin.display(description="size")
    def size(self, asset: Asset) -> str:
        return f"{asset.width}×{asset.height}, {asset.byte_size / 1024:.0f} KiB"


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "source", "external_id", "outcome", "created_at", "completed_at"]
    list_filter = ["source", "outcome", "study"]
    search_fields = ["external_id", "external_session_id"]
    readonly_fields = [f.name for f in Rater._meta.fields]
    actions = ["forget_personal_data"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Delete personal data (keep the votes, anonymous)")
    def forget_personal_data(self, request: HttpRequest, queryset: QuerySet[Rater]) -> None:
        cleared = raters.forget_personal_data(raters=queryset)
        self.message_user(
            request,
            f"Personal data deleted for {cleared} rater{'s' if cleared != 1 else ''}; "
            "their votes are kept without them.",
            messages.SUCCESS,
        )


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["pk", "assignment", "answer", "response_ms", "is_current", "created_at"]
    list_filter = ["answer", "is_current", "assignment__study", "assignment__kind"]
    list_select_related = ["assignment"]
    readonly_fields = [f.name for f in Vote._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Vote | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Vote | None = None) -> bool:
        # Votes are data: never deleted from the admin.
        return False


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """Pairs raters reported: the media stay withheld until a decision here."""

    list_display = [
        "created_at",
        "study",
        "reason",
        "side",
        "thumbnails",
        "decision",
        "reviewed_at",
    ]
    list_filter = ["decision", "reason", "assignment__study"]
    readonly_fields = ["assignment", "reason", "side", "thumbnails", "decision", "reviewed_at"]
    exclude = ["assets"]
    actions = ["clear", "keep"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return super().get_queryset(request).select_related("assignment__study")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="study")
    def study(self, flag: Flag) -> str:
        return flag.assignment.study.name

    @admin.display(description="media flagged")
    def thumbnails(self, flag: Flag) -> str:
        return format_html(
            " ".join(
                '<a href="{}"><img src="{}" height="64" alt=""></a>' for _ in flag.assets.all()
            ),
            *[part for asset in flag.assets.all() for part in (asset.file.url, asset.still_url)],
        )

    @admin.action(description="Clear: show these media to raters again")
    def clear(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        n = assignments.review_flags(flags=queryset, decision=FlagDecision.CLEARED)
        self.message_user(request, f"{n} flag(s) cleared; their media are shown again.")

    @admin.action(description="Keep withheld")
    def keep(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        n = assignments.review_flags(flags=queryset, decision=FlagDecision.KEPT)
        self.message_user(request, f"{n} flag(s) decided: media stay withheld.", messages.INFO)


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What the token may do; a CI job that only reads needs only read.",
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "scopes"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "user" in self.fields:
            users = cast(Any, self.fields["user"])
            users.queryset = users.queryset.filter(is_staff=True, is_active=True)
            users.help_text = "The staff user the token acts as."


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens of the researcher API: made here (the secret is shown once), revoked here."""

    form = ApiTokenForm
    list_display = ["name", "user", "prefix", "scope_list", "created_at", "last_used_at", "state"]
    list_filter = ["revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user.pk, "scopes": [ApiScope.READ]}

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        secret = None if change else obj.new_secret()
        super().save_model(request, obj, form, change)
        if secret is not None:
            self.message_user(
                request,
                f"The token {obj.name!r}: {secret} — copy it now; it is not shown again "
                "(only its hash is stored).",
                messages.WARNING,
            )

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes) or "none"

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        return "revoked" if token.revoked_at else "active"

    @admin.action(description="Revoke (calls with it are refused from now on)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {done} token(s).", messages.SUCCESS)


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    """The researcher API's audit log: read-only."""

    list_display = ["created_at", "token", "user", "method", "path", "status"]
    list_filter = ["status", "method"]
    list_select_related = ["token__user"]
    search_fields = ["path", "token__name", "token__user__username"]

    @admin.display(description="user")
    def user(self, call: ApiCall) -> str:
        return str(call.token.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="Where events are POSTed (JSON)."
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Webhook
        fields = ["url", "study", "events", "active", "secret"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Receivers of study events; the secret signs each payload (README: webhooks)."""

    form = WebhookForm
    list_display = ["url", "study", "event_list", "active", "created_at"]
    list_filter = ["active"]

    @admin.display(description="events")
    def event_list(self, hook: Webhook) -> str:
        return ", ".join(hook.events) or "none"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: each event sent, its attempts and the receiver's last answer."""

    list_display = ["created_at", "event", "webhook", "status", "attempts", "last_status_code",
                    "last_error", "delivered_at"]  # fmt: skip
    list_filter = ["status", "event"]
    list_select_related = ["webhook"]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send again (a new series of attempts)")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        from studies.tasks import deliver_webhook

        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(status=DeliveryStatus.PENDING, attempts=0)
        for pk in ids:
            deliver_webhook.delay(pk)
        self.message_user(request, f"Queued {len(ids)} deliveries again.", messages.SUCCESS)
