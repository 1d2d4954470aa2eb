"""Researcher-written Markdown (consent, instructions), sanitised before raters see it."""

import markdown as md
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["sane_lists"])
    # nh3 keeps ordinary formatting and links and drops scripts, styles and handlers.
    return mark_safe(nh3.clean(html, link_rel="noopener noreferrer nofollow"))
