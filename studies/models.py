"""Study design, the media to compare, and the raters' side (raters, assignments, votes).

Nothing here may reach a rater by itself: system names, backends, parameters and
generation metadata are researcher-only. Rater-facing code lists the fields it shows.
"""

import secrets
import string
from decimal import Decimal
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Count, F, OuterRef, Q, Subquery, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape


class PairSelection(models.TextChoices):
    BALANCED = "balanced", "Balanced: every pair of systems equally often"
    ADAPTIVE = "adaptive", "Adaptive: more votes where the ranking is still uncertain"


class StudyType(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise: which of two outputs is better"
    REALNESS = "realness", "Real or generated: one image at a time"


class Modality(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    GENERATING = "generating", "Generating media"
    READY = "ready", "Ready to launch"
    PILOT = "pilot", "Piloting"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


# Where raters are admitted: a pilot (up to its cap of raters) or the full study.
OPEN_TO_RATERS = frozenset({StudyStatus.PILOT, StudyStatus.LIVE})


class ExternalIds(models.TextChoices):
    """How exports carry participants' external ids (Prolific PID, study, session)."""

    HASHED = "hashed", "Hashed with the study's salt"
    PLAIN = "plain", "As given"
    OMIT = "omit", "Left out"


def new_salt() -> str:
    return secrets.token_hex(16)


class Answer(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    # Real-or-generated studies.
    REAL = "real", "Real"
    GENERATED = "generated", "Generated"


# The answers a pairwise study may offer; a real-or-generated study offers REALNESS_ANSWERS.
PAIRWISE_ANSWERS = (Answer.LEFT, Answer.RIGHT, Answer.TIE, Answer.BOTH_BAD)
REALNESS_ANSWERS = (Answer.REAL, Answer.GENERATED)


def default_allowed_answers() -> list[str]:
    return [answer.value for answer in PAIRWISE_ANSWERS]


def new_completion_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _count_of(model: type[models.Model], path: str, **filters: object) -> Coalesce:
    """A correlated COUNT(*) subquery; avoids the row blow-up of several Count() joins."""
    rows = (
        model._default_manager.filter(**{path: OuterRef("pk")}, **filters)
        .order_by()
        .values(path)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=models.IntegerField()), 0)


class StudyQuerySet(models.QuerySet["Study"]):
    def open_to_raters(self) -> "StudyQuerySet":
        return self.filter(status__in=OPEN_TO_RATERS)

    def with_progress(self) -> "StudyQuerySet":
        """Counts for progress: media made / expected, votes / target."""
        counted = self.annotate(
            n_systems=_count_of(System, "study"),
            n_prompts=_count_of(Prompt, "study"),
            n_criteria=_count_of(Criterion, "study"),
            n_assets=_count_of(Asset, "system__study", kind=AssetKind.OUTPUT),
            n_votes=_count_of(
                Vote,
                "assignment__study",
                is_current=True,
                assignment__kind__in=["comparison", "judgment"],
            ),
        )
        n_pairs = F("n_systems") * (F("n_systems") - 1) / 2
        pairwise_target = F("n_prompts") * n_pairs * F("n_criteria") * F("votes_per_comparison")
        return counted.annotate(
            asset_target=F("n_systems") * F("n_prompts") * F("seeds_per_prompt"),
            # Real or generated: every image (real ones included) judged that many times.
            vote_target=Case(
                When(study_type=StudyType.REALNESS, then=F("n_assets") * F("votes_per_comparison")),
                default=pairwise_target,
            ),
        )


class Study(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=80,
        unique=True,
        # The admin renders help texts as HTML: anything in angle brackets is escaped.
        help_text=escape("Appears in the rater link: /r/<slug>/"),
    )
    study_type = models.CharField(
        max_length=10,
        choices=StudyType,
        default=StudyType.PAIRWISE,
        help_text="Pairwise: raters pick the better of two outputs. Real or generated: raters "
        "see one image and say whether it is a real photograph or generated; the pool mixes "
        "the study's real images (a system marked “real images”) with the systems' outputs.",
    )
    modality = models.CharField(max_length=10, choices=Modality, default=Modality.IMAGE)
    status = models.CharField(max_length=12, choices=StudyStatus, default=StudyStatus.DRAFT)
    # The name and slug are the researcher's; raters see only this title.
    public_title = models.CharField(
        max_length=120, default="Image comparison", help_text="The title raters see."
    )
    instructions = models.TextField(
        blank=True, help_text="Markdown, shown to raters before the first comparison."
    )
    consent = models.TextField(
        blank=True, help_text="Markdown consent text; raters must agree before they start."
    )
    content_warning = models.TextField(
        blank=True,
        help_text="Shown above the consent text, set apart, when the media may disturb "
        "(violence, medical imagery, …); empty: no warning.",
    )
    pilot_raters = models.PositiveSmallIntegerField(
        default=5,
        help_text="Raters a pilot admits (“Launch pilot” on the study page); later "
        "arrivals are told the study is full until the full launch.",
    )
    # When the latest pilot began: its raters are the pilot raters who arrived since.
    pilot_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Generation design.
    seeds_per_prompt = models.PositiveSmallIntegerField(
        default=1, help_text="Outputs generated per (system, prompt)."
    )
    # Rating design.
    comparisons_per_session = models.PositiveSmallIntegerField(
        default=20, help_text="Comparisons one rater judges in a session (attention checks extra)."
    )
    votes_per_comparison = models.PositiveSmallIntegerField(
        default=5,
        help_text="Target votes for each (prompt, pair of systems, criterion); in a real or "
        "generated study, judgments of each image.",
    )
    attention_check_rate = models.FloatField(
        default=0.1, help_text="Share of a session's comparisons that are attention checks."
    )
    max_failed_attention_checks = models.PositiveSmallIntegerField(
        default=1,
        help_text="A rater who fails more checks than this ends with the failed-checks code.",
    )
    allowed_answers = models.JSONField(
        default=default_allowed_answers,
        help_text='Answers offered to raters: any of "left", "right", "tie", "both_bad".',
    )
    min_viewing_ms = models.PositiveIntegerField(
        default=1500, help_text="Answers stay disabled this long after both media are shown."
    )
    practice_comparisons = models.PositiveSmallIntegerField(
        default=2, help_text="Practice pairs with feedback before the real ones (0: none)."
    )
    assignment_timeout_minutes = models.PositiveSmallIntegerField(
        default=30,
        help_text="A served pair left unanswered this long goes back to the pool.",
    )
    criteria_on_one_screen = models.BooleanField(
        default=False,
        help_text="Ask every criterion on one screen for the same pair (one answer each); "
        "halves rater time when the criteria are judged on the same media.",
    )
    real_share = models.FloatField(
        default=0.5,
        help_text="Real or generated: the share of a session's images that are real "
        "(HYPE and Stein et al. use 0.5).",
    )
    exposure_ms = models.PositiveIntegerField(
        default=0,
        help_text="Real or generated: how long each image is shown, in ms, before it is "
        "covered (HYPE's time-limited variant uses 500 ms or less); 0: until answered.",
    )
    pair_selection = models.CharField(
        max_length=10,
        choices=PairSelection,
        default=PairSelection.BALANCED,
        help_text="Adaptive: every few seconds the votes so far decide which pairs of systems "
        "need votes most (a floor of votes for every pair first); prompts stay balanced "
        "within each pair, sides counterbalanced, no repeats for a rater.",
    )
    stop_when_settled = models.BooleanField(
        default=False,
        help_text="Stop serving a criterion's pairs once its ranking is settled: every "
        "adjacent pair of systems apart at 99.9 % (stricter than the report's level, since "
        "the check repeats as votes arrive) and every system with 30 votes or more. Its "
        "votes so far stay in the report; raters go on with the other criteria, or finish "
        "early with the completion code.",
    )
    # Bumped whenever media, prompts or criteria change, so that what a served pair shows
    # can be cached per process and never be stale (studies.content).
    content_version = models.PositiveIntegerField(default=0, editable=False)
    ask_questionnaire = models.BooleanField(
        default=True, help_text="Ask device, screen and age band (all optional) at the end."
    )
    completion_code_completed = models.CharField(max_length=64, default=new_completion_code)
    completion_code_failed_checks = models.CharField(max_length=64, default=new_completion_code)
    completion_code_no_consent = models.CharField(max_length=64, default=new_completion_code)
    # A rater may stop at any time (the consent promises it): the partial-completion code.
    completion_code_stopped = models.CharField(max_length=64, default=new_completion_code)
    # Pay (studies.pay): what a session pays, and the floor an hourly rate is held to.
    reward_per_session = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="What a rater is paid for a completed session (e.g. the Prolific reward).",
    )
    currency = models.CharField(max_length=3, default="GBP", help_text="e.g. GBP, USD, EUR.")
    minimum_hourly_pay = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("9.00"),
        help_text="The study page warns when the expected hourly pay falls below this "
        "(Prolific recommends 9.00 GBP an hour and requires at least 6.00).",
    )
    seconds_per_comparison = models.PositiveSmallIntegerField(
        default=8,
        help_text="Expected seconds a rater spends on one pair, for the pay estimate; "
        "replaced by the measured median once 8 real answers exist (a pilot's, kept or "
        "discarded).",
    )
    # Data protection: exports hash participants' ids with this study's own salt.
    external_ids_in_exports = models.CharField(
        max_length=8,
        choices=ExternalIds,
        default=ExternalIds.HASHED,
        help_text="How vote exports carry Prolific ids: hashed (the same participant is "
        "the same code within this study only), as given, or left out.",
    )
    export_salt = models.CharField(max_length=32, default=new_salt, editable=False)
    personal_data_retention_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Raters' personal data (Prolific ids, questionnaire, browser) are deleted "
        "this many days after their session by `manage.py purge_personal_data` (run it "
        "daily); their votes stay, anonymous. Empty: kept until deleted by hand.",
    )
    completion_redirect_url = models.URLField(
        blank=True,
        help_text=escape(
            "e.g. https://app.prolific.com/submissions/complete; ?cc=<code> is appended. "
            "Empty: the code is shown to copy."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(attention_check_rate__gte=0) & Q(attention_check_rate__lte=0.5),
                name="study_attention_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(seeds_per_prompt__gte=1), name="study_seeds_per_prompt_positive"
            ),
            models.CheckConstraint(
                condition=Q(comparisons_per_session__gte=1),
                name="study_comparisons_per_session_positive",
            ),
            models.CheckConstraint(
                condition=Q(votes_per_comparison__gte=1),
                name="study_votes_per_comparison_positive",
            ),
            models.CheckConstraint(
                condition=Q(real_share__gte=0.1) & Q(real_share__lte=0.9),
                name="study_real_share_range",
            ),
            models.CheckConstraint(
                condition=Q(exposure_ms__lte=60000), name="study_exposure_ms_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The open rater link (the admin's "view on site")."""
        return reverse("rater-entry", args=[self.slug])

    @property
    def prolific_link_query(self) -> str:
        """What to append to the rater link in Prolific's study settings."""
        return (
            "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
        )

    @property
    def needs_attention_copies(self) -> bool:
        """Attention checks and practice pairs both show an output against a corrupted copy
        (in a real-or-generated study only the checks do: practice shows the pool)."""
        if self.is_realness:
            return self.attention_check_rate > 0
        return self.attention_check_rate > 0 or self.practice_comparisons > 0

    def pilot_rater_set(self) -> "models.QuerySet[Rater]":
        """The raters of the latest pilot (none before one began)."""
        if self.pilot_started_at is None:
            return Rater.objects.none()
        return Rater.objects.filter(
            study=self, in_pilot=True, created_at__gte=self.pilot_started_at
        )

    @property
    def is_open_to_raters(self) -> bool:
        return self.status in OPEN_TO_RATERS

    @property
    def is_realness(self) -> bool:
        return self.study_type == StudyType.REALNESS

    @property
    def offered_answers(self) -> list[str]:
        """What a rater may answer: real or generated, or the pairwise study's choice."""
        if self.is_realness:
            return [answer.value for answer in REALNESS_ANSWERS]
        return list(self.allowed_answers)

    def clean(self) -> None:
        if self.is_realness and self.modality != Modality.IMAGE:
            raise ValidationError(
                {"study_type": "Real-or-generated studies show images; choose the image modality."}
            )
        answers = self.allowed_answers
        valid = {answer.value for answer in PAIRWISE_ANSWERS}
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise ValidationError(
                {"allowed_answers": 'Give a list of answers, e.g. ["left", "right"].'}
            )
        unknown = [a for a in answers if a not in valid]
        if unknown:
            raise ValidationError(
                {"allowed_answers": f"Unknown answers {unknown}; choose from {sorted(valid)}."}
            )
        if not {Answer.LEFT, Answer.RIGHT} <= set(answers):
            raise ValidationError({"allowed_answers": "Left and right must both be offered."})
        if len(set(answers)) != len(answers):
            raise ValidationError({"allowed_answers": "Each answer may be listed once."})


class System(models.Model):
    """A compared model. Its name and backend are researcher-only, never shown to raters."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="systems")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # The backend registry lives in generation/backends; studies only stores the key.
    backend = models.CharField(max_length=40, default="synthetic")
    backend_params = models.JSONField(default=dict, blank=True)
    is_real = models.BooleanField(
        default=False,
        verbose_name="real images",
        help_text="Real or generated studies: this row holds the real images (uploaded as "
        "an import), not a system; the report sets the systems against them.",
    )
    price_per_image = models.DecimalField(
        max_digits=10,
        decimal_places=5,
        null=True,
        blank=True,
        help_text="For an API model: what one image (or one video) costs, entered by hand. "
        "Left empty, the readiness view costs the recorded GPU-seconds.",
    )

    class Meta:
        ordering = ["study", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="system_unique_study_name"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(is_real=True), name="system_one_real_set"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    category = models.CharField(max_length=100, blank=True)
    # What the prompt names, for the readiness view's group comparison, e.g.
    # {"group": "older women"}: one string value per attribute.
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text='What the prompt names, one string per attribute, e.g. {"group": "older women"}.',
    )

    class Meta:
        ordering = ["study", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["study", "text"], name="prompt_unique_study_text"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Criterion(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="criteria")
    key = models.SlugField(max_length=40, help_text="Short name used in exports, e.g. alignment.")
    question = models.CharField(max_length=300, help_text="The question raters see.")
    order = models.PositiveSmallIntegerField(default=0)
    copy_is_known_worse = models.BooleanField(
        default=False,
        help_text="A visibly corrupted copy is a known worse answer to this question (true "
        "for visual quality; false for prompt match, where a damaged copy matches as well). "
        "Practice and attention checks use such copies only for these criteria.",
    )
    # Set when serving its pairs stopped because its ranking was settled
    # (Study.stop_when_settled), with the criterion's votes at that moment.
    settled_at = models.DateTimeField(null=True, blank=True, editable=False)
    settled_votes = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "criteria"
        ordering = ["study", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["study", "key"], name="criterion_unique_study_key"),
        ]

    def __str__(self) -> str:
        return self.key


class AssetKind(models.TextChoices):
    OUTPUT = "output", "Generated output"
    ATTENTION = "attention", "Attention-check copy"


def new_token() -> str:
    # An unguessable handle for anything a rater refers to.
    return secrets.token_urlsafe(12)


def new_public_id() -> str:
    # 96 random bits; the only handle a rater ever gets on an asset.
    return secrets.token_urlsafe(12)


def asset_upload_to(instance: "Asset", filename: str) -> str:
    # The stored name is the opaque public id; the suffix comes from ingest, not the source.
    return f"a/{instance.public_id}{PurePosixPath(filename).suffix.lower()}"


class AssetQuerySet(models.QuerySet["Asset"]):
    def outputs(self) -> "AssetQuerySet":
        return self.filter(kind=AssetKind.OUTPUT)

    def for_study(self, study: Study) -> "AssetQuerySet":
        return self.filter(system__study=study)

    def preview_grid(
        self, study: Study, *, per_system: int = 6
    ) -> list[tuple[System, list["Asset"]]]:
        """The first prompts' outputs (lowest seed) of every system, for the admin."""
        prompt_ids = list(study.prompts.order_by("pk").values_list("pk", flat=True)[:per_system])
        first: dict[tuple[int, int], Asset] = {}
        outputs = self.outputs().filter(system__study=study, prompt_id__in=prompt_ids)
        for asset in outputs.select_related("prompt").order_by("-seed"):
            first[(asset.system_id, asset.prompt_id)] = asset
        return [
            (system, [first[key] for pid in prompt_ids if (key := (system.pk, pid)) in first])
            for system in study.systems.all()
        ]


class Asset(models.Model):
    """One stored medium: an output of (system, prompt, seed), or an attention-check copy."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="assets")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="assets")
    seed = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=AssetKind, default=AssetKind.OUTPUT)
    source = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attention_copies",
        help_text="For an attention-check copy: the output it corrupts.",
    )
    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    file = models.FileField(upload_to=asset_upload_to, max_length=200)
    # A video's first frame as PNG, shown before it plays; empty for images.
    poster = models.FileField(upload_to=asset_upload_to, max_length=200, blank=True)
    media_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration_s = models.FloatField(null=True, blank=True)
    byte_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Flagged by a rater (broken, disturbing): not served again until a researcher clears it.
    withheld = models.BooleanField(default=False)
    # Researcher-only: what the backend reported (model, parameters, timings).
    generation_meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AssetQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [
            # Also the index behind "the output of this system for this prompt".
            models.UniqueConstraint(
                fields=["system", "prompt", "seed"],
                condition=Q(kind=AssetKind.OUTPUT),
                name="asset_unique_system_prompt_seed",
            ),
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(kind=AssetKind.ATTENTION),
                name="asset_unique_attention_copy",
            ),
            models.CheckConstraint(
                condition=(Q(kind=AssetKind.OUTPUT) & Q(source__isnull=True))
                | (Q(kind=AssetKind.ATTENTION) & Q(source__isnull=False)),
                name="asset_attention_copy_has_source",
            ),
        ]

    def __str__(self) -> str:
        return f"asset {self.public_id}"

    @property
    def still_url(self) -> str:
        """A picture of the medium: the image itself, or a video's poster frame."""
        return self.poster.url if self.poster else self.file.url


class RaterSource(models.TextChoices):
    OPEN = "open", "Open link"
    PROLIFIC = "prolific", "Prolific"
    SIMULATED = "simulated", "Simulated"


class RaterOutcome(models.TextChoices):
    COMPLETED = "completed", "Completed"
    FAILED_CHECKS = "failed_checks", "Failed attention checks"
    NO_CONSENT = "no_consent", "Did not consent"
    STOPPED = "stopped", "Stopped early"


class Rater(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="raters")
    source = models.CharField(max_length=12, choices=RaterSource, default=RaterSource.OPEN)
    # Prolific: PROLIFIC_PID, STUDY_ID and SESSION_ID of the entry link.
    external_id = models.CharField(max_length=64, blank=True)
    external_study_id = models.CharField(max_length=64, blank=True)
    external_session_id = models.CharField(max_length=64, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    instructions_done_at = models.DateTimeField(null=True, blank=True)
    # When the scheduler found nothing more to serve (plan done, pool exhausted, or failed).
    judging_done_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=RaterOutcome, blank=True)
    questionnaire = models.JSONField(default=dict, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Entered while the study was piloting: the pilot's votes can be kept or discarded.
    in_pilot = models.BooleanField(default=False)
    # When the rater's personal data were deleted (their votes stay, anonymous).
    personal_data_deleted_at = models.DateTimeField(null=True, blank=True)
    # What the rater's browser holds (in the session cookie): random, never the pk.
    session_token = models.CharField(max_length=24, unique=True, default=new_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The answered screens summed up (studies.tally), kept with each vote so that a
    # request never reads the whole session.
    tally = models.JSONField(default=dict, blank=True, editable=False)
    # No pair of the rater's below this id is served (kept with each vote): where the
    # session read starts. Pairs are only ever served as new rows, under the rater's
    # lock, so the bound only rises; 0 reads from the start.
    live_from = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # One rater per (study, participant): a returning participant resumes.
            models.UniqueConstraint(
                fields=["study", "source", "external_id"],
                condition=~Q(external_id=""),
                name="rater_unique_study_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"rater {self.pk} ({self.get_source_display()})"

    @property
    def is_simulated(self) -> bool:
        return self.source == RaterSource.SIMULATED


class Comparison(models.Model):
    """One unit of the design: a prompt, an unordered pair of systems and a criterion.

    Built when the study launches. The counters are how often each system was shown on
    the left in pairs that count (open or answered; expired, replaced and flagged pairs
    are given back). Their sum is the comparison's load, what the scheduler orders by, and
    their difference is the counterbalance. Answering a pair changes neither.
    """

    # Indexed by comparison_unique_design_cell, which leads with it.
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="comparisons", db_index=False
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="+")
    system_a = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    system_b = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    shown_a_left = models.PositiveIntegerField(default=0)
    shown_b_left = models.PositiveIntegerField(default=0)
    # Whether the last serve put system a on the left: what the serving UPDATE returns.
    last_a_left = models.BooleanField(default=False)
    # False while no pair of its media may be shown (withheld after a flag).
    available = models.BooleanField(default=True)
    # A fixed random order among comparisons of equal load.
    shuffle = models.PositiveIntegerField(default=0)
    # Adaptive selection: the pick orders by (load + 1) × stride, so a pair's rows are
    # served in proportion to 1 / stride (analysis.selection sets it from the votes); 1 in
    # a balanced study, where the order is the load's.
    stride = models.FloatField(default=1.0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "prompt", "criterion", "system_a", "system_b"],
                name="comparison_unique_design_cell",
            ),
            models.CheckConstraint(
                condition=Q(system_a__lt=F("system_b")), name="comparison_ordered_pair"
            ),
        ]
        indexes = [
            # The scheduler's pick: the least-loaded comparison of a study.
            models.Index(
                F("study"),
                F("shown_a_left") + F("shown_b_left"),
                F("shuffle"),
                name="comparison_load_pick",
            ),
            # The adaptive pick: the comparison of a study with the least weighted load.
            models.Index(
                F("study"),
                (F("shown_a_left") + F("shown_b_left") + 1) * F("stride"),
                F("shuffle"),
                name="comparison_stride_pick",
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class AssignmentKind(models.TextChoices):
    COMPARISON = "comparison", "Comparison"
    JUDGMENT = "judgment", "Real-or-generated judgment"
    ATTENTION = "attention", "Attention check"
    PRACTICE = "practice", "Practice"


class AssignmentStatus(models.TextChoices):
    SERVED = "served", "Served"
    ANSWERED = "answered", "Answered"
    EXPIRED = "expired", "Expired"
    REPLACED = "replaced", "Replaced after a load failure"
    FLAGGED = "flagged", "Flagged by the rater"
    DISCARDED = "discarded", "Discarded with the pilot"


class Assignment(models.Model):
    """One pair served to one rater. The shown order is fixed here when it is served."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="assignments")
    # Indexed by assignment_rater_status, which leads with it.
    rater = models.ForeignKey(
        Rater, on_delete=models.PROTECT, related_name="assignments", db_index=False
    )
    # The only handle the rater's browser gets; unique by a constraint, which on
    # PostgreSQL spares the LIKE index a unique field gets (never used, and written on
    # every serve).
    token = models.CharField(max_length=24, default=new_token, editable=False)
    kind = models.CharField(
        max_length=12, choices=AssignmentKind, default=AssignmentKind.COMPARISON
    )
    # Set for kind "comparison"; attention checks and practice pairs are outside the design.
    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments"
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+")
    left_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    right_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    # All criteria on one screen: the token of the screen's first assignment, shared by
    # its siblings (same pair, same sides, one per criterion). Blank: a screen of its own.
    screen = models.CharField(max_length=24, blank=True)
    # Attention checks and practice pairs have a known answer.
    expected_answer = models.CharField(max_length=10, choices=Answer, blank=True)
    status = models.CharField(
        max_length=10, choices=AssignmentStatus, default=AssignmentStatus.SERVED
    )
    served_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Real or generated: how long the image was shown (0: until answered), fixed at serving.
    exposure_ms = models.PositiveIntegerField(null=True, blank=True)
    # What the browser reported when a medium failed to load (the pair was replaced).
    load_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # The same medium on both sides only as an identical-pair trap (answer: tie),
            # or as the one image of a real-or-generated judgment (its truth known).
            models.CheckConstraint(
                condition=~Q(left_asset=models.F("right_asset"))
                | Q(kind="attention", expected_answer="tie")
                | Q(expected_answer__in=["real", "generated"]),
                name="assignment_distinct_assets_or_trap",
            ),
            # Never the same comparison twice for one rater; also the index behind the
            # scheduler's "not judged by this rater".
            models.UniqueConstraint(
                fields=["rater", "comparison"],
                condition=Q(comparison__isnull=False),
                name="assignment_unique_rater_comparison",
            ),
            models.UniqueConstraint(fields=["token"], name="assignment_unique_token"),
        ]
        indexes = [
            models.Index(fields=["rater", "status"], name="assignment_rater_status"),
            # The pairs every request of the comparison page reads (studies.desk_sql
            # .is_live), found without reading the rest of the session: those on screen
            # from the rater's live_from on (an answered pair leaves a dead entry here
            # until vacuum; the bound keeps a long session's from being read again on
            # every vote), and the attention checks.
            models.Index(
                fields=["rater", "id"], condition=Q(status="served"), name="assignment_served"
            ),
            models.Index(
                fields=["rater"], condition=Q(kind="attention"), name="assignment_attention"
            ),
            # The siblings of a screen of several questions.
            models.Index(fields=["screen"], condition=~Q(screen=""), name="assignment_screen"),
            # The sweep of abandoned pairs.
            models.Index(
                fields=["study", "expires_at"],
                condition=Q(status="served"),
                name="assignment_open_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}"


class Vote(models.Model):
    """A rater's answer to an assignment.

    A correction is a new vote that supersedes the previous one, which is kept for audit;
    exactly one vote per assignment is current.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="votes")
    answer = models.CharField(max_length=10, choices=Answer)
    # Measured by the browser from the moment both media were on screen.
    response_ms = models.PositiveIntegerField()
    client_id = models.UUIDField(help_text="Generated by the browser; a retry carries the same id.")
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["client_id"], name="vote_unique_client_id"),
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(is_current=True),
                name="vote_unique_assignment",
            ),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}"


class KnownPair(models.Model):
    """Practice-grade material: two media of one prompt with a known better answer to one
    criterion (for prompt match, an output that drops an element the prompt names against
    one that has it). Practice pairs teach with it; attention checks test with it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="known_pairs")
    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="known_pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    better = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    worse = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    explanation = models.TextField(
        help_text="Why the better one is better, in the criterion's words; shown to raters "
        "after a practice answer. Name sides as “the better one”, never a system."
    )

    class Meta:
        ordering = ["study", "criterion", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(better=F("worse")), name="known_pair_distinct_assets"
            ),
        ]

    def __str__(self) -> str:
        return f"known pair {self.pk} ({self.criterion})"


class FlagReason(models.TextChoices):
    BROKEN = "broken", "Broken or does not load properly"
    DISTURBING = "disturbing", "Disturbing or offensive"
    UNJUDGEABLE = "unjudgeable", "Impossible to judge"


class FlagSide(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    BOTH = "both", "Both"


class FlagDecision(models.TextChoices):
    PENDING = "", "Awaiting review"
    CLEARED = "cleared", "Cleared: shown again"
    KEPT = "kept", "Kept withheld"


class Flag(models.Model):
    """A rater's report that a pair is broken, disturbing or impossible to judge. The pair
    is replaced and the media flagged are withheld until a researcher reviews the flag."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="flag")
    reason = models.CharField(max_length=12, choices=FlagReason)
    side = models.CharField(max_length=5, choices=FlagSide, default=FlagSide.BOTH)
    assets = models.ManyToManyField(Asset, related_name="flags")
    decision = models.CharField(max_length=8, choices=FlagDecision, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"flag {self.pk} ({self.get_reason_display()})"


class ApiScope(models.TextChoices):
    READ = "read", "Read: studies, progress, reports and exports"
    WRITE = "write", "Write: create and change studies, upload media, start generation"
    LAUNCH = "launch", "Launch: launch, pause and close studies"


def _digest(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True, user__is_active=True, user__is_staff=True)

    def by_secret(self, secret: str) -> "ApiToken | None":
        return self.active().select_related("user").filter(digest=_digest(secret)).first()


class ApiToken(models.Model):
    """A researcher's key to the researcher API (studies.researcher_api), acting as its
    staff user within its scopes. The secret is shown once, when made; only its SHA-256
    is stored. Revoked, not deleted, so that the audit log keeps naming it."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. “CI of repo X”.")
    scopes = models.JSONField(default=list, blank=True)
    prefix = models.CharField(max_length=12, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def new_secret(self) -> str:
        """Draw this token's secret (before saving it): returned once, stored hashed."""
        secret = "vd_" + secrets.token_urlsafe(32)
        self.prefix, self.digest = secret[:10], _digest(secret)
        return secret

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class ApiCall(models.Model):
    """The audit log of the researcher API: who called what, when, and the answer."""

    token = models.ForeignKey(ApiToken, on_delete=models.PROTECT, related_name="calls")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API call"
        indexes = [models.Index(fields=["token", "created_at"], name="apicall_token_time")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}"


class WebhookEvent(models.TextChoices):
    MEDIA_READY = "media_ready", "Media ready (a generation job finished)"
    LAUNCHED = "launched", "Launched"
    VOTE_TARGET_REACHED = "vote_target_reached", "Vote target reached"
    RANKING_SETTLED = "ranking_settled", "Ranking settled (a criterion stopped)"
    REPORT_REBUILT = "report_rebuilt", "Report rebuilt"


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """A receiver of study events: a signed POST per event (studies.webhooks)."""

    study = models.ForeignKey(
        Study,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhooks",
        help_text="Empty: every study's events.",
    )
    url = models.URLField(max_length=500, help_text="Where events are POSTed (JSON).")
    events = models.JSONField(default=list, blank=True)
    secret = models.CharField(
        max_length=64,
        default=new_webhook_secret,
        help_text="Signs each payload (HMAC-SHA256, header X-Verdict-Signature).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries used up)"


class WebhookDelivery(models.Model):
    """One event sent to one webhook: the delivery log, attempts and the last answer."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=24, choices=WebhookEvent)
    # What makes an event once-only per webhook (e.g. the criterion that settled).
    key = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["webhook", "key"], name="delivery_once_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook}"
