"""Number formats of the report page."""

import math

from django import template

register = template.Library()


@register.filter
def sig(value: float | None, digits: int = 4) -> str:
    """``digits`` significant digits in plain decimal notation (never 1e-05): metric
    values span from 0.0001 to 10,000 and a fixed number of decimals loses one end."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"
