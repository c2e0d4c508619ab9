"""Every main page under the Content-Security-Policy in a real browser (Debian's Chromium):
no violation reported (securitypolicyviolation events and the console's "Refused to ..."
messages), no script error, and what the page draws with script drawn."""

import pytest
from django.contrib.gis.geos import Point

from renovation.models import CaseState
from tests.conftest import browser_login
from tests.renovation.factories import case_in_state

# The policy is the same whatever the database: one run (PostGIS) is enough.
pytestmark = [pytest.mark.browser, pytest.mark.once, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.anjuCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile}:${event.lineNumber} on ${document.location.pathname}`
  );
});
"""


def test_main_pages_run_under_the_content_security_policy(page, live_server, regions):
    case = case_in_state(CaseState.APPLIED, photos=False)
    household = case.house.household
    household.location = Point(107.9, 27.2, srid=4326)
    household.save(update_fields=["location"])
    county = case.team["county"]
    violations, errors = [], []
    page.expose_function("anjuCspViolation", lambda text: violations.append(text))
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    def visit(path: str, ready: str):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy, path
        page.wait_for_selector(ready, timeout=15000)
        return policy

    visit("/login/", "form.stacked-form")
    browser_login(page, live_server, county)
    visit("/households/", "table.records")
    # The household file: its map drawn by folium's inline script, allowed by the nonce.
    policy = visit(f"/households/{household.pk}/", ".leaflet-container path.leaflet-interactive")
    assert "'nonce-" in policy
    visit(f"/regions/{household.village.code[:9]}/", ".leaflet-container path")
    visit(f"/cases/{case.pk}/", "h1")
    page.goto(f"{live_server.url}/maps/")
    page.wait_for_function("() => document.body.dataset.housesLoaded === 'true'", timeout=15000)
    # Regions and houses share one canvas (houses drawn above regions take real clicks).
    assert page.locator(".leaflet-container canvas").count() >= 1
    visit("/exports/", "form")
    visit("/field/", "#search-form")
    # The service worker, registered from 'self' (worker-src), takes control of the page.
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # Swagger UI: its start-up script comes from docs/?script= (no inline script).
    visit("/api/docs/", ".swagger-ui .info .title")

    assert violations == []
    assert errors == []
    assert page.external_requests == []
