"""Django's admin site, with failed logins throttled per address and user name."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from studies import limits


class VerdictAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """After ``LOGINS.per_minute`` failed attempts in a minute, a 429 with
        Retry-After until the minute is over; the password is not even checked."""
        if request.method != "POST":
            return super().login(request, extra_context)
        name = str(request.POST.get("username", ""))[:150].lower()
        who = f"{limits.client_address(request)}:{name}"
        wait = limits.wait_seconds(limits.LOGINS, who, count=False)
        if wait:
            response = HttpResponse(
                f"Too many failed logins for this user from this address: try again in {wait} s.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait)
            return response
        response = super().login(request, extra_context)
        if response.status_code == 200:  # the form again: the login failed
            limits.wait_seconds(limits.LOGINS, who)
        return response
