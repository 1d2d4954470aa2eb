"""What a session pays by the hour, before launch: the reward over the expected session
length, from the measured time per pair once real raters (a pilot) have answered enough,
otherwise from the study's configured time per pair."""

import math
import statistics
from dataclasses import dataclass
from decimal import Decimal

from studies.models import RaterSource, Study, Vote

# Real answers needed before their median replaces the configured time per pair.
MEASURED_FROM = 8  # a small pilot: two raters judging four pairs each
# Moving from one pair to the next (feedback, loading the next screen), seconds.
BETWEEN_PAIRS_S = 1.0
# Consent, instructions and the questionnaire, seconds.
FIXED_S = 90.0


@dataclass(frozen=True)
class PayEstimate:
    seconds_per_pair: float
    source: str  # where seconds_per_pair comes from, in words
    screens: int  # pairs in one session: practice, comparisons and attention checks
    session_seconds: float
    reward: Decimal
    currency: str
    hourly: Decimal
    minimum: Decimal

    @property
    def below_minimum(self) -> bool:
        return self.hourly < self.minimum

    @property
    def session_minutes(self) -> float:
        return self.session_seconds / 60

    def sentence(self) -> str:
        text = (
            f"A session of {self.screens} pairs takes about {self.session_minutes:.1f} min "
            f"({self.seconds_per_pair:.1f} s a pair, {self.source}): {self.reward} "
            f"{self.currency} a session is {self.hourly} {self.currency} an hour."
        )
        if self.below_minimum:
            text += f" That is below the minimum of {self.minimum} {self.currency} an hour."
        return text


def _measured_seconds(study: Study) -> tuple[float, int] | None:
    times = list(
        # Every real answer, a discarded pilot's too: it timed the task all the same.
        Vote.objects.filter(assignment__study=study)
        .exclude(assignment__rater__source=RaterSource.SIMULATED)
        .values_list("response_ms", flat=True)[:5000]
    )
    if len(times) < MEASURED_FROM:
        return None
    return statistics.median(times) / 1000 + BETWEEN_PAIRS_S, len(times)


def pay_estimate(*, study: Study) -> PayEstimate | None:
    """None while the study names no reward."""
    if study.reward_per_session is None:
        return None
    checks = math.ceil(study.comparisons_per_session * study.attention_check_rate)
    screens = study.practice_comparisons + study.comparisons_per_session + checks
    measured = _measured_seconds(study)
    if measured is not None:
        per_pair, n = measured
        source = f"the median of {n} real answers"
    else:
        per_pair, source = float(study.seconds_per_comparison), "as configured"
    session = FIXED_S + screens * per_pair
    hourly = (study.reward_per_session * Decimal(3600) / Decimal(str(session))).quantize(
        Decimal("0.01")
    )
    return PayEstimate(
        seconds_per_pair=per_pair,
        source=source,
        screens=screens,
        session_seconds=session,
        reward=study.reward_per_session,
        currency=study.currency,
        hourly=hourly,
        minimum=study.minimum_hourly_pay,
    )
