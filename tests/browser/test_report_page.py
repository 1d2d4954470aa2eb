"""The agreement report page in headless Debian Chromium: no plot or table overflows its
box, on a laptop screen and on a phone."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, ViewportSize

from tests.factories import make_reported_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Per element, whether it stays inside its box: a plot or picture inside its figure,
# a figure inside the report's column, a table inside its scroll box (or, on a phone,
# the box scrolls sideways and itself stays on the screen); and the page never scrolls
# sideways.
OVERFLOWS = """(phone) => {
  const width = document.documentElement.clientWidth;
  const column = document.querySelector('main.report').getBoundingClientRect();
  const out = [];
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1;
  for (const el of document.querySelectorAll('svg.plot, figure img')) {
    if (!inside(el.getBoundingClientRect(), el.closest('figure').getBoundingClientRect()))
      out.push('plot past its figure in ' + el.closest('section').id);
  }
  for (const el of document.querySelectorAll('figure')) {
    if (!inside(el.getBoundingClientRect(), column))
      out.push('figure past the column in ' + el.closest('section').id);
  }
  for (const table of document.querySelectorAll('table')) {
    const box = table.closest('.scroll');
    const fits = inside(table.getBoundingClientRect(), box.getBoundingClientRect());
    const scrolls = getComputedStyle(box).overflowX === 'auto' && box.scrollWidth > box.clientWidth;
    if (!fits && !(phone && scrolls))
      out.push('table past its box in ' + table.closest('section').id);
    if (box.getBoundingClientRect().right > width + 1) out.push('table box past the screen');
  }
  if (document.documentElement.scrollWidth > width) out.push('page scrolls sideways');
  return out;
}"""


@pytest.mark.parametrize(
    ("viewport", "phone"),
    [({"width": 1366, "height": 800}, False), ({"width": 390, "height": 844}, True)],
)
def test_no_plot_or_table_overflows_its_box(
    live_server, browser: Browser, viewport: ViewportSize, phone: bool
) -> None:
    study = make_reported_study()
    get_user_model()._default_manager.create_superuser("staff", "s@localhost", "pw-1234567")
    page = browser.new_page(viewport=viewport)
    url = f"/reports/studies/{study.slug}/?budget=0.003"
    page.goto(f"{live_server.url}/admin/login/?next={url}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-1234567")
    page.click("input[type=submit]")
    page.wait_for_selector("#provenance")
    assert page.locator("svg.plot").count() >= 4  # scores, histogram, scatter, Pareto
    assert page.locator("table.heat td.num").count() == 9  # who beats whom, 3 by 3
    for section in ("summary", "leaderboard", "agreement", "metrics", "examples", "readiness",
                    "decision", "provenance"):  # fmt: skip
        assert page.locator(f"section#{section}").is_visible()
    assert page.evaluate(OVERFLOWS, phone) == []
    # The decision view answers the budget it was asked.
    assert "within these bounds" in page.locator("#decision").inner_text()
