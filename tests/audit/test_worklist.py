"""The auditor's worklist page (/audit/worklist/) and API (/api/anomalies/): who may see
them, filters, counts, pagination, response shape, and the OpenAPI schema."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from audit import views as worklist_views
from audit.anomalies import AnomalyKind
from tests.audit.test_anomalies import clean_case, clean_household

pytestmark = pytest.mark.django_db

WORKLIST = "/audit/worklist/"
API = "/api/anomalies/"


@pytest.fixture
def auditor(make_user, regions):
    return make_user(Role.AUDITOR, [regions["county"]], username="auditor")


@pytest.fixture
def planted(regions):
    """Township 1: a 2026 case for a household in no key group. Township 2: a 2027 double
    benefit, and a household (no case) with no head ID number."""
    h1 = clean_household(regions["village1"], key_group=None)
    h2 = clean_household(regions["village2"], poverty_relocation=True)
    h3 = clean_household(regions["village2"], head_id_number="")
    return {
        "h1": h1,
        "h2": h2,
        "h3": h3,
        "c1": clean_case(h1),
        "c2": clean_case(h2, funding_year=2027),
    }


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# --- the page -----------------------------------------------------------------------------------


def test_the_url_names_resolve():
    assert reverse("audit:worklist") == WORKLIST
    assert reverse("api:anomalies") == API


def test_an_auditor_sees_every_anomaly_with_its_reason_link_and_counts(client, auditor, planted):
    client.force_login(auditor)

    response = client.get(WORKLIST)

    assert response.status_code == 200
    html = response.content.decode()
    c1 = planted["c1"]
    assert (
        f"Case {c1.pk} (funding year 2026) is for a household in no key group; only households "
        "of a certified key group qualify."
    ) in html
    assert f'href="/cases/{c1.pk}/"' in html
    assert f'href="/households/{planted["h3"].pk}/">Open the household file</a>' in html
    assert "3 anomalies" in html
    assert [(row["code"], row["count"]) for row in response.context["kinds"] if row["count"]] == [
        ("no_key_group", 1),
        ("double_benefit", 1),
        ("missing_id", 1),
    ]
    assert [a.code for a in response.context["page"].object_list] == [
        "no_key_group",
        "double_benefit",
        "missing_id",
    ]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.COUNTY_OFFICIAL, Role.ADMINISTRATOR])
def test_auditors_county_officials_and_administrators_may_open_the_page(
    client, make_user, regions, role
):
    client.force_login(make_user(role, [regions["county"]]))

    response = client.get(WORKLIST)

    assert response.status_code == 200
    assert f'<a href="{WORKLIST}" aria-current="page">Worklist</a>' in response.content.decode()


@pytest.mark.parametrize("role", [Role.TOWNSHIP_OFFICIAL, Role.INSPECTOR])
def test_township_officials_and_inspectors_get_403_and_no_link(client, make_user, regions, role):
    user = make_user(role, [regions["county"]])
    client.force_login(user)

    assert client.get(WORKLIST).status_code == 403
    assert WORKLIST not in client.get("/households/").content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(WORKLIST)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={WORKLIST}"


def test_another_townships_anomalies_are_not_on_the_page(client, make_user, regions, planted):
    client.force_login(make_user(Role.AUDITOR, [regions["township2"]]))

    response = client.get(WORKLIST)

    assert [a.household for a in response.context["page"].object_list] == [
        planted["h2"],
        planted["h3"],
    ]
    assert planted["h1"].archive_no not in response.content.decode()


def test_the_page_filters_by_kind_region_and_year(client, auditor, planted):
    client.force_login(auditor)

    def listed(query):
        response = client.get(WORKLIST, query)
        assert response.status_code == 200
        return [(a.code, a.household) for a in response.context["page"].object_list]

    assert listed({"kind": "double_benefit"}) == [("double_benefit", planted["h2"])]
    assert listed({"region": "520399100"}) == [("no_key_group", planted["h1"])]
    assert listed({"year": "2027"}) == [("double_benefit", planted["h2"])]
    assert listed({"kind": "", "region": "", "year": ""}) == [
        ("no_key_group", planted["h1"]),
        ("double_benefit", planted["h2"]),
        ("missing_id", planted["h3"]),
    ]
    # Counts stay those of every kind when the list shows one.
    response = client.get(WORKLIST, {"kind": "double_benefit"})
    assert [row["count"] for row in response.context["kinds"]].count(1) == 3


def test_bad_filters_say_what_is_wrong_and_list_nothing(client, auditor, make_user, regions):
    client.force_login(auditor)

    response = client.get(WORKLIST, {"kind": "bogus", "year": "1800"})

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "Select a valid choice. bogus is not one of the available choices." in html
    assert "Ensure this value is greater than or equal to 2000." in html
    assert "Correct the filters above to see the worklist." in html

    client.force_login(make_user(Role.AUDITOR, [regions["township1"]]))
    response = client.get(WORKLIST, {"region": "520399101"})
    assert response.context["page"] is None
    assert response.context["form"].errors == {
        "region": ["There is no region 520399101 among your regions."]
    }


def test_the_page_is_paginated(client, auditor, regions, monkeypatch):
    monkeypatch.setattr(worklist_views, "PAGE_SIZE", 2)
    for _ in range(3):
        clean_case(clean_household(regions["village1"], key_group=None))
    client.force_login(auditor)

    first = client.get(WORKLIST)
    second = client.get(WORKLIST, {"page": 2})

    assert len(first.context["page"].object_list) == 2
    assert "Page 1 of 2" in first.content.decode()
    assert len(second.context["page"].object_list) == 1


def test_the_page_costs_the_same_queries_for_more_anomalies(client, auditor, regions):
    client.force_login(auditor)
    clean_case(clean_household(regions["village1"], key_group=None, head_id_number=""))
    with CaptureQueriesContext(connection) as few:
        client.get(WORKLIST)
    for _ in range(4):
        clean_case(clean_household(regions["village1"], key_group=None, head_id_number=""))
    with CaptureQueriesContext(connection) as many:
        client.get(WORKLIST)

    assert len(many.captured_queries) == len(few.captured_queries)


# --- the API --------------------------------------------------------------------------------------


def test_the_api_answers_a_page_of_anomalies_with_counts(auditor, planted):
    response = api_client(auditor).get(API)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results", "counts"}
    assert body["count"] == 3
    assert body["counts"] == {
        **dict.fromkeys(AnomalyKind.values, 0),
        "no_key_group": 1,
        "double_benefit": 1,
        "missing_id": 1,
    }
    h1, c1, h3 = planted["h1"], planted["c1"], planted["h3"]
    assert body["results"][0] == {
        "code": "no_key_group",
        "label": "Household in no key group",
        "reason": f"Case {c1.pk} (funding year 2026) is for a household in no key group; "
        "only households of a certified key group qualify.",
        "household": {
            "id": h1.pk,
            "archive_no": h1.archive_no,
            "head_name": h1.head_name,
            "village_code": "520399100200",
            "village_name": "青山村",
        },
        "case": c1.pk,
        "url": f"/cases/{c1.pk}/",
    }
    assert body["results"][2] == {
        "code": "missing_id",
        "label": "Missing national ID numbers",
        "reason": f"The head of household {h3.head_name} has no ID number recorded.",
        "household": {
            "id": h3.pk,
            "archive_no": h3.archive_no,
            "head_name": h3.head_name,
            "village_code": "520399101200",
            "village_name": "河坝村",
        },
        "case": None,
        "url": f"/households/{h3.pk}/",
    }


def test_the_api_filters_and_pages(auditor, planted):
    client = api_client(auditor)

    def codes(query):
        response = client.get(API, query)
        assert response.status_code == 200, response.json()
        return [row["code"] for row in response.json()["results"]]

    assert codes({"kind": "missing_id"}) == ["missing_id"]
    assert codes({"region": "520399101"}) == ["double_benefit", "missing_id"]
    assert codes({"year": 2026}) == ["no_key_group"]
    paged = client.get(API, {"page_size": 1, "page": 2}).json()
    assert [row["code"] for row in paged["results"]] == ["double_benefit"]
    assert paged["next"].endswith("/api/anomalies/?page=3&page_size=1")


def test_the_api_refuses_bad_filters_naming_each(auditor, regions):
    response = api_client(auditor).get(API, {"kind": "bogus", "region": "123", "year": "1999"})

    assert response.status_code == 400
    assert response.json() == {
        "kind": ["Unknown kind “bogus”; use one of: " + ", ".join(AnomalyKind.values) + "."],
        "region": ["region must be a region code of 2, 4, 6, 9 or 12 digits; got “123”."],
        "year": ["Ensure this value is greater than or equal to 2000."],
    }
    unknown = api_client(auditor).get(API, {"region": "520399999"})
    assert unknown.json() == {"region": ["region: no region has the code 520399999."]}


def test_the_api_is_scoped_to_the_users_regions(make_user, regions, planted):
    township1 = make_user(Role.AUDITOR, [regions["township1"]])

    body = api_client(township1).get(API).json()
    # Another region's code is a valid filter that finds nothing of theirs.
    other = api_client(township1).get(API, {"region": "520399101"}).json()

    assert [row["household"]["id"] for row in body["results"]] == [planted["h1"].pk]
    assert other["count"] == 0


@pytest.mark.parametrize("role", [Role.TOWNSHIP_OFFICIAL, Role.INSPECTOR])
def test_the_api_answers_403_to_townships_and_inspectors(make_user, regions, role):
    response = api_client(make_user(role, [regions["county"]])).get(API)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only auditors, county officials and administrators see the worklist."
    }


def test_the_api_answers_401_to_anonymous_clients(db):
    response = api_client().get(API)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_openapi_schema_documents_the_worklist_and_still_validates(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )

    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/anomalies/:" in schema
    assert "PaginatedAnomalyList" in schema
