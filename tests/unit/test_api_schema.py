"""The OpenAPI schema of the whole API (drf-spectacular), served to staff, and
schemathesis against it on a live server: generated requests to every operation, as a rater,
as staff and anonymously, never get a 5xx, and every 4xx carries a message."""

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.factories import make_live_study, start_rater

RAW = SchemaGenerator().get_schema(request=None, public=True)
# Responses by status, for the run's figures (printed with -s).
SEEN: Counter[int] = Counter()
schema = schemathesis.openapi.from_dict(RAW)


def test_the_schema_is_served_to_staff_only(admin_client: Client, client: Client) -> None:
    served = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert served.status_code == 200
    body = json.loads(served.content)
    assert body["openapi"].startswith("3.")
    assert {"/api/r/{slug}/votes", "/api/studies/{slug}/report"} <= set(body["paths"])
    assert {"/api/v1/studies", "/api/v1/studies/{slug}/launch"} <= set(body["paths"])
    assert body["components"]["securitySchemes"]["researcherToken"]["scheme"] == "bearer"
    assert client.get("/api/schema/").status_code in (401, 403)


@pytest.fixture
def identities(live_server: Any, settings: Any) -> Iterator[dict[str, Any]]:
    settings.RATE_LIMITS = False  # thousands of calls from one session
    study = make_live_study(systems=3, prompts=3)
    rater = Client()
    start_rater(rater, study)
    rater.get(f"/r/{study.slug}/compare")  # sets the CSRF cookie, as the page does
    rater.post(f"/api/r/{study.slug}/session", "{}", content_type="application/json")
    staff = Client()
    staff.force_login(
        get_user_model()._default_manager.create_superuser("api", "api@localhost", "pw-12345678")
    )
    staff.get("/admin/")  # the CSRF cookie
    assert "csrftoken" in rater.cookies and "csrftoken" in staff.cookies

    # A researcher's token with every scope: the researcher API is fuzzed as its users
    # call it (cookies open none of it).
    from studies.models import ApiToken

    token = ApiToken(user=get_user_model()._default_manager.get(username="api"), name="fuzz")
    token.scopes = ["read", "write", "launch"]
    secret = token.new_secret()
    token.save()

    def cookies(client: Client) -> dict[str, str]:
        return {name: morsel.value for name, morsel in client.cookies.items()}

    yield {
        "url": live_server.url,
        "slug": study.slug,
        "as": {"rater": cookies(rater), "staff": cookies(staff), "anonymous": {}, "token": {}},
        "bearer": secret,
    }


@schema.parametrize()
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
@pytest.mark.django_db(transaction=True)
def test_no_generated_request_gets_a_server_error(case: Any, identities: dict[str, Any]) -> None:
    if case.path_parameters and "slug" in case.path_parameters:
        case.path_parameters["slug"] = identities["slug"]
    for who, cookies in identities["as"].items():
        headers = {"X-CSRFToken": cookies.get("csrftoken", "")}
        if who == "token":
            headers = {"Authorization": f"Bearer {identities['bearer']}"}
        response = case.call(base_url=identities["url"], cookies=cookies, headers=headers)
        SEEN[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} as {who}: {response.status_code}"
        assert response.status_code < 500, where + f" {response.text[:300]}"
        if 400 <= response.status_code < 500 and response.status_code != 405:
            detail = json.loads(response.text or "{}")
            assert detail, where + " without a message"
    print(f"{case.method} {case.formatted_path}: so far {sum(SEEN.values())} calls {dict(SEEN)}")
