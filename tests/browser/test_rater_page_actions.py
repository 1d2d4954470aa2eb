"""The comparison page's other actions in Chromium: reporting a pair (F) and a screen with
every criterion's question on it."""

import pytest
from playwright.sync_api import Browser

from studies.models import Assignment, AssignmentStatus, Flag, Vote
from tests.browser.flow import enter_by_prolific_link
from tests.factories import make_live_study

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_f_reports_a_pair_with_a_reason_and_side_and_the_pair_is_replaced(
    live_server, browser: Browser
) -> None:
    study = make_live_study(
        systems=3, prompts=3, attention_check_rate=0, practice_comparisons=0, min_viewing_ms=0
    )
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    enter_by_prolific_link(page, live_server.url, study)
    page.wait_for_selector("#answers:not(.waiting) button[data-answer=left]:enabled")
    shown = Assignment.objects.filter(rater__study=study).order_by("pk").first()
    assert shown is not None and shown.status == AssignmentStatus.SERVED
    page.keyboard.press("f")
    page.wait_for_selector("#flag:not([hidden])")
    page.check("input[name=reason][value=disturbing]")
    page.check("input[name=side][value=right]")
    page.click("#flag-send")
    page.wait_for_selector("#status:has-text('the pair was reported')")
    flag = Flag.objects.get()
    assert (flag.assignment_id, flag.reason, flag.side) == (shown.pk, "disturbing", "right")
    shown.refresh_from_db()
    assert shown.status == AssignmentStatus.FLAGGED
    # Another pair is on screen, open to answer; nothing was voted.
    page.wait_for_selector("#answers:not(.waiting) button[data-answer=left]:enabled")
    assert not Vote.objects.exists()
    assert page.locator("#flag").is_hidden()
    # Esc closes the form without reporting.
    page.keyboard.press("F")
    page.wait_for_selector("#flag:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#flag", state="hidden")
    assert Flag.objects.count() == 1


def test_all_criteria_on_one_screen_take_one_answer_each_by_keyboard(
    live_server, browser: Browser
) -> None:
    study = make_live_study(
        systems=3,
        prompts=2,
        criteria=2,
        attention_check_rate=0,
        practice_comparisons=0,
        min_viewing_ms=0,
        criteria_on_one_screen=True,
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    enter_by_prolific_link(page, live_server.url, study)
    page.wait_for_selector(".question-row .answers:not(.waiting) button[data-answer]:enabled")
    rows = page.locator(".question-row")
    assert rows.count() == 2
    questions = [rows.nth(i).locator(".question").inner_text() for i in range(2)]
    assert questions == list(study.criteria.order_by("order").values_list("question", flat=True))
    assert page.locator("#answers").is_hidden()
    page.keyboard.press("1")  # the first question: left
    page.wait_for_selector(".question-row.answered")
    assert not Vote.objects.exists()  # sent once every question has its answer
    page.keyboard.press("2")  # the second: right
    page.wait_for_function("() => document.querySelectorAll('.question-row.answered').length === 0")
    votes = list(Vote.objects.select_related("assignment__criterion").order_by("pk"))
    assert [v.answer for v in votes] == ["left", "right"]
    assert [v.assignment.criterion.order for v in votes] == [0, 1]
    assert len({v.response_ms for v in votes}) == 1  # one response time per screen
    assert votes[0].assignment.screen == votes[1].assignment.screen != ""
