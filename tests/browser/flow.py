"""Steps of the rater flow that several browser tests take."""

import secrets

from playwright.sync_api import Page

from studies.models import Study


def enter_by_prolific_link(page: Page, base: str, study: Study) -> None:
    """A new Prolific participant arrives, consents and reads the instructions, up to the
    comparison page."""
    ids = "&".join(
        f"{name}={secrets.token_hex(12)}" for name in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
    )
    page.goto(f"{base}/r/{study.slug}/?{ids}")
    page.click("text=I agree, start")
    page.wait_for_url("**/instructions")
    page.click("button:has-text('Start')")
    page.wait_for_url("**/compare")
