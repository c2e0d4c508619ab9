"""The REST API under /api/: shapes, scoping, auth, ID-number masking, filters, schema, docs."""

import re

import pytest
from django.contrib.gis.geos import Point
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from housing.models import IdNumberReveal, RenovationStatus, SafetyGrade
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory, key_group

HEAD_ID = "520399197005171231"  # idnumbers.make("520399", 1970-05-17, 123)
MEMBER_ID = "520399199802032460"  # idnumbers.make("520399", 1998-02-03, 246)

HOUSEHOLD_PROPERTIES = {
    "archive_no",
    "village",
    "head_name",
    "head_id_number",
    "phone",
    "address",
    "location_source",
    "key_group",
    "poverty_relocation",
    "current_house",
    "url",
}
MEMBER_KEYS = {
    "id",
    "household",
    "name",
    "relation",
    "id_number",
    "sex",
    "birth_date",
    "birth_year",
    "disability_level",
    "phone",
}


@pytest.fixture
def client():
    return APIClient()


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def family(regions):
    """A household in village 1 with known ID numbers, a member and a current house."""
    household = HouseholdFactory(
        village=regions["village1"],
        archive_no="QS-0001",
        head_name="王大山",
        head_id_number=HEAD_ID,
        phone="13900000001",
        address="青山村 1 号",
        location=Point(107.9123, 27.2234, srid=4326),
    )
    HouseFactory(
        household=household,
        structure_type="earth_wood",
        storeys=2,
        floor_area="88.50",
        year_built=1979,
        safety_grade=SafetyGrade.D,
        renovation_status=RenovationStatus.PLANNED,
    )
    member = FamilyMemberFactory(
        household=household,
        name="王小河",
        relation="child",
        id_number=MEMBER_ID,
        phone="13900000002",
    )
    return {"household": household, "member": member}


@pytest.fixture
def other(regions):
    """A household in the other township (village 2), with a member."""
    household = HouseFactory(
        household=HouseholdFactory(
            village=regions["village2"],
            archive_no="HB-0001",
            head_name="李石头",
            location=Point(108.012, 27.215, srid=4326),
        ),
        safety_grade=SafetyGrade.B,
    ).household
    FamilyMemberFactory(household=household, name="李小花")
    return household


# --- shape ------------------------------------------------------------------------------


def test_household_list_is_a_paginated_geojson_feature_collection(county_official, family, other):
    response = logged_in(county_official).get("/api/households/")

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["type", "count", "next", "previous", "features"]
    assert body["type"] == "FeatureCollection"
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    # Ordered by archive number: HB-0001 (the other township) first.
    assert body["features"][0]["geometry"]["coordinates"] == [108.012, 27.215]
    feature = body["features"][1]
    household = family["household"]
    assert set(feature) == {"id", "type", "geometry", "properties"}
    assert feature["type"] == "Feature"
    assert feature["id"] == household.pk
    assert feature["geometry"] == {"type": "Point", "coordinates": [107.9123, 27.2234]}
    assert set(feature["properties"]) == HOUSEHOLD_PROPERTIES
    assert feature["properties"] == {
        "archive_no": "QS-0001",
        "village": {"code": "520399100200", "name": "青山村"},
        "head_name": "王大山",
        "head_id_number": "520399***********1",
        "phone": "13900000001",
        "address": "青山村 1 号",
        "location_source": "surveyed",
        "key_group": "minimum_income",
        "poverty_relocation": False,
        "current_house": {
            "structure_type": "earth_wood",
            "storeys": 2,
            "floor_area": 88.5,
            "year_built": 1979,
            "safety_grade": "D",
            "renovation_status": "planned",
        },
        "url": f"http://testserver/households/{household.pk}/",
    }


def test_household_without_location_or_house_has_null_geometry_and_house(administrator, regions):
    household = HouseholdFactory(village=regions["village1"], location=None, key_group=None)

    feature = logged_in(administrator).get("/api/households/").json()["features"][0]

    assert feature["id"] == household.pk
    assert feature["geometry"] is None
    assert feature["properties"]["current_house"] is None
    assert feature["properties"]["key_group"] is None


def test_household_list_pages_by_page_size(administrator, family, other):
    client = logged_in(administrator)

    first = client.get("/api/households/", {"page_size": 1}).json()
    second = client.get("/api/households/", {"page_size": 1, "page": 2}).json()

    assert first["count"] == 2
    assert first["next"] == "http://testserver/api/households/?page=2&page_size=1"
    assert first["previous"] is None
    assert [f["properties"]["archive_no"] for f in first["features"]] == ["HB-0001"]
    assert [f["properties"]["archive_no"] for f in second["features"]] == ["QS-0001"]
    assert second["next"] is None


def test_household_detail_is_one_feature_with_its_members(county_official, family):
    household, member = family["household"], family["member"]

    response = logged_in(county_official).get(f"/api/households/{household.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "type", "geometry", "properties"}
    assert (body["type"], body["id"]) == ("Feature", household.pk)
    assert body["geometry"] == {"type": "Point", "coordinates": [107.9123, 27.2234]}
    assert set(body["properties"]) == HOUSEHOLD_PROPERTIES | {"members"}
    assert body["properties"]["current_house"]["safety_grade"] == "D"
    assert body["properties"]["members"] == [
        {
            "id": member.pk,
            "household": household.pk,
            "name": "王小河",
            "relation": "child",
            "id_number": "520399***********0",
            "sex": "F",
            # Beside the masked number only the year: the date is what the mask hides.
            "birth_date": None,
            "birth_year": 1998,
            "disability_level": "",
            "phone": "13900000002",
        }
    ]


def test_household_members_endpoint_lists_the_members(county_official, family):
    household = family["household"]
    FamilyMemberFactory(household=household, name="王二河")

    response = logged_in(county_official).get(f"/api/households/{household.pk}/members/")

    assert response.status_code == 200
    assert [m["name"] for m in response.json()] == ["王小河", "王二河"]
    assert set(response.json()[0]) == MEMBER_KEYS


def test_member_list_is_paginated_and_filters_by_household(county_official, family, other):
    client = logged_in(county_official)

    everyone = client.get("/api/members/").json()
    one = client.get("/api/members/", {"household": family["household"].pk}).json()

    assert list(everyone) == ["count", "next", "previous", "results"]
    assert everyone["count"] == 2
    assert [m["name"] for m in one["results"]] == ["王小河"]
    assert set(one["results"][0]) == MEMBER_KEYS


def test_member_list_rejects_a_household_that_is_not_a_number(administrator):
    response = logged_in(administrator).get("/api/members/", {"household": "abc"})

    assert response.status_code == 400
    assert response.json() == {"household": ["A valid integer is required."]}


def test_region_list_is_plain_json_without_boundaries(administrator, regions):
    response = logged_in(administrator).get("/api/regions/", {"level": "township"})

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["results"] == [
        {"code": "520399100", "name": "龙溪镇", "level": "township", "parent": "520399"},
        {"code": "520399101", "name": "白泥镇", "level": "township", "parent": "520399"},
    ]


def test_region_list_with_geometry_is_a_geojson_feature_collection(administrator, regions):
    response = logged_in(administrator).get("/api/regions/", {"geometry": 1, "parent": "520399100"})

    body = response.json()
    assert list(body) == ["type", "count", "next", "previous", "features"]
    assert body["type"] == "FeatureCollection"
    [feature] = body["features"]
    assert feature["id"] == "520399100200"
    assert feature["properties"] == {
        "code": "520399100200",
        "name": "青山村",
        "level": "village",
        "parent": "520399100",
    }
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["geometry"]["coordinates"] == [
        [[[107.9, 27.2], [107.95, 27.2], [107.95, 27.25], [107.9, 27.25], [107.9, 27.2]]]
    ]


def test_region_detail_is_looked_up_by_code(township_official, regions):
    client = logged_in(township_official)

    plain = client.get("/api/regions/520399100/")
    feature = client.get("/api/regions/520399100/", {"geometry": "1"})

    assert plain.status_code == 200
    assert plain.json() == {
        "code": "520399100",
        "name": "龙溪镇",
        "level": "township",
        "parent": "520399",
    }
    assert feature.json()["type"] == "Feature"
    assert feature.json()["id"] == "520399100"
    assert feature.json()["geometry"]["type"] == "MultiPolygon"


def test_region_list_rejects_an_unknown_level(administrator, regions):
    response = logged_in(administrator).get("/api/regions/", {"level": "hamlet"})

    assert response.status_code == 400
    assert response.json() == {
        "level": ["Unknown level “hamlet”; use one of: province, city, county, township, village."]
    }


def test_region_list_rejects_a_malformed_parent_code(administrator, regions):
    response = logged_in(administrator).get("/api/regions/", {"parent": "5203a"})

    assert response.status_code == 400
    assert response.json() == {
        "parent": ["parent must be a region code of 2, 4, 6, 9 or 12 digits; got “5203a”."]
    }


# --- scoping ----------------------------------------------------------------------------


def test_township_official_lists_only_households_in_their_township(
    township_official, family, other
):
    body = logged_in(township_official).get("/api/households/").json()

    assert body["count"] == 1
    assert [f["id"] for f in body["features"]] == [family["household"].pk]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/households/{pk}/"),
        ("get", "/api/households/{pk}/members/"),
        ("post", "/api/households/{pk}/reveal-ids/"),
    ],
)
def test_household_in_another_township_is_not_found(township_official, other, method, path):
    response = getattr(logged_in(township_official), method)(path.format(pk=other.pk))

    assert response.status_code == 404
    assert not IdNumberReveal.objects.exists()


def test_absent_household_is_not_found(administrator, regions):
    client = logged_in(administrator)

    assert client.get("/api/households/999999/").status_code == 404
    assert client.get("/api/households/99999999999999999999999/").status_code == 404
    assert client.get("/api/households/abc/").status_code == 404


def test_members_of_another_township_never_appear_in_the_member_list(
    township_official, family, other
):
    client = logged_in(township_official)

    everyone = client.get("/api/members/").json()
    theirs = client.get("/api/members/", {"household": other.pk}).json()

    assert [m["name"] for m in everyone["results"]] == ["王小河"]
    assert theirs["count"] == 0


def test_bbox_and_region_filters_never_widen_scope(township_official, family, other):
    client = logged_in(township_official)

    whole_county_box = client.get("/api/households/", {"in_bbox": "107.0,26.0,109.0,28.0"})
    whole_county = client.get("/api/households/", {"region": "520399"})
    other_township = client.get("/api/households/", {"region": "520399101"})

    assert [f["id"] for f in whole_county_box.json()["features"]] == [family["household"].pk]
    assert [f["id"] for f in whole_county.json()["features"]] == [family["household"].pk]
    assert other_township.json()["count"] == 0


def test_township_official_sees_only_their_regions(township_official, regions):
    client = logged_in(township_official)

    codes = [r["code"] for r in client.get("/api/regions/").json()["results"]]
    children = client.get("/api/regions/", {"parent": "520399"}).json()["results"]

    assert codes == ["520399100", "520399100200"]
    assert [r["code"] for r in children] == ["520399100"]
    assert client.get("/api/regions/520399101/").status_code == 404
    assert client.get("/api/regions/520399/").status_code == 404


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/households/"),
        ("get", "/api/households/{pk}/"),
        ("get", "/api/households/{pk}/members/"),
        ("post", "/api/households/{pk}/reveal-ids/"),
        ("get", "/api/members/"),
        ("get", "/api/regions/"),
        ("get", "/api/regions/520399/"),
    ],
)
def test_anonymous_requests_are_unauthorized(client, family, method, path):
    response = getattr(client, method)(path.format(pk=family["household"].pk))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_token_from_username_and_password_authenticates(client, township_official, family):
    response = client.post(
        "/api/auth/token/", {"username": "township1", "password": "test-pass-123"}
    )

    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=township_official).key
    assert response.json()["expires"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/households/").json()["count"] == 1


def test_token_request_with_a_wrong_password_is_refused(client, township_official):
    response = client.post("/api/auth/token/", {"username": "township1", "password": "nope"})

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
    assert not Token.objects.exists()


def test_a_wrong_token_is_unauthorized(client, db):
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")

    response = client.get("/api/households/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


# --- ID numbers ---------------------------------------------------------------------------


def test_id_numbers_are_masked_for_officials(county_official, family):
    properties = (
        logged_in(county_official).get(f"/api/households/{family['household'].pk}/").json()
    )["properties"]

    assert properties["head_id_number"] == "520399***********1"
    assert properties["members"][0]["id_number"] == "520399***********0"


def test_id_numbers_are_in_full_for_administrators(administrator, family):
    client = logged_in(administrator)

    detail = client.get(f"/api/households/{family['household'].pk}/").json()["properties"]
    members = client.get("/api/members/").json()["results"]

    assert detail["head_id_number"] == HEAD_ID
    assert detail["members"][0]["id_number"] == MEMBER_ID
    assert members[0]["id_number"] == MEMBER_ID
    assert (members[0]["birth_date"], members[0]["birth_year"]) == ("1998-02-03", 1998)


@pytest.mark.parametrize(
    "role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR]
)
def test_birth_dates_are_years_only_beside_masked_numbers(make_user, regions, family, role):
    client = logged_in(make_user(role, [regions["county"]]))

    members = client.get("/api/members/").json()["results"]
    nested = client.get(f"/api/households/{family['household'].pk}/members/").json()

    assert [(m["id_number"], m["birth_date"], m["birth_year"]) for m in members + nested] == [
        ("520399***********0", None, 1998)
    ] * 2


@pytest.mark.parametrize(
    "role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR]
)
def test_search_by_a_whole_id_number_is_refused_to_all_but_administrators(
    make_user, regions, family, role
):
    client = logged_in(make_user(role, [regions["county"]]))

    for number in (MEMBER_ID, HEAD_ID.lower(), "520399197005171239"):  # right, lowercase, wrong
        response = client.get("/api/households/", {"q": number})
        assert response.status_code == 400
        assert response.json() == {
            "q": [
                "Only administrators may search by a whole ID number; search by the name or "
                "the archive number instead."
            ]
        }


def test_county_official_reveals_id_numbers_and_the_reveal_is_logged(county_official, family):
    household, member = family["household"], family["member"]

    response = logged_in(county_official).post(f"/api/households/{household.pk}/reveal-ids/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "household": household.pk,
        "head_id_number": HEAD_ID,
        "members": [{"id": member.pk, "name": "王小河", "id_number": MEMBER_ID}],
    }
    reveal = IdNumberReveal.objects.get()
    assert (reveal.user, reveal.household, reveal.via) == (county_official, household, "api")


@pytest.mark.parametrize("role", [Role.TOWNSHIP_OFFICIAL, Role.INSPECTOR, Role.AUDITOR])
def test_other_roles_may_not_reveal_id_numbers(make_user, regions, family, role):
    user = make_user(role, [regions["county"]])

    response = logged_in(user).post(f"/api/households/{family['household'].pk}/reveal-ids/")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Only county officials may reveal ID numbers, for households in their regions."
    }
    assert not IdNumberReveal.objects.exists()


def test_reveal_ids_only_accepts_post(county_official, family):
    response = logged_in(county_official).get(
        f"/api/households/{family['household'].pk}/reveal-ids/"
    )

    assert response.status_code == 405
    assert not IdNumberReveal.objects.exists()


# --- filters --------------------------------------------------------------------------------


def archive_numbers(user, **params) -> list[str]:
    response = logged_in(user).get("/api/households/", params)
    assert response.status_code == 200, response.json()
    return [f["properties"]["archive_no"] for f in response.json()["features"]]


@pytest.fixture
def unappraised(regions):
    """A household in village 2, not in a key group, whose house is not yet appraised."""
    return HouseFactory(
        household=HouseholdFactory(
            village=regions["village2"], archive_no="HB-0002", head_name="赵木", key_group=None
        ),
        safety_grade=SafetyGrade.NOT_APPRAISED,
        renovation_status=RenovationStatus.NONE,
    ).household


def test_grade_filter(administrator, family, other, unappraised):
    assert archive_numbers(administrator, grade="D") == ["QS-0001"]
    assert archive_numbers(administrator, grade="B") == ["HB-0001"]
    assert archive_numbers(administrator, grade="none") == ["HB-0002"]
    assert archive_numbers(administrator) == ["HB-0001", "HB-0002", "QS-0001"]
    # A blank value is "any", as an unselected <select> sends it.
    assert archive_numbers(administrator, grade="") == ["HB-0001", "HB-0002", "QS-0001"]


def test_unknown_grade_is_a_bad_request(administrator, regions):
    response = logged_in(administrator).get("/api/households/", {"grade": "E"})

    assert response.status_code == 400
    assert response.json() == {"grade": ["Unknown grade “E”; use one of: A, B, C, D, none."]}


def test_key_group_filter(administrator, family, other, unappraised):
    key_group("registered_poor")

    assert archive_numbers(administrator, key_group="minimum_income") == ["HB-0001", "QS-0001"]
    assert archive_numbers(administrator, key_group="none") == ["HB-0002"]
    assert archive_numbers(administrator, key_group="registered_poor") == []


def test_unknown_key_group_is_a_bad_request(administrator, family):
    response = logged_in(administrator).get("/api/households/", {"key_group": "rich"})

    assert response.status_code == 400
    assert response.json() == {
        "key_group": ["Unknown key_group “rich”; use one of: minimum_income, none."]
    }


def test_renovation_status_filter(administrator, family, other):
    assert archive_numbers(administrator, renovation_status="planned") == ["QS-0001"]
    assert archive_numbers(administrator, renovation_status="completed") == []


def test_unknown_renovation_status_is_a_bad_request(administrator, regions):
    response = logged_in(administrator).get("/api/households/", {"renovation_status": "done"})

    assert response.status_code == 400
    assert response.json() == {
        "renovation_status": [
            "Unknown renovation_status “done”; use one of: none, planned, in_progress, completed."
        ]
    }


def test_q_filter_matches_name_archive_number_and_member_id_number(administrator, family, other):
    assert archive_numbers(administrator, q="大山") == ["QS-0001"]
    assert archive_numbers(administrator, q="HB-") == ["HB-0001"]
    assert archive_numbers(administrator, q=MEMBER_ID) == ["QS-0001"]


def test_region_filter_includes_everything_under_the_region(administrator, family, other):
    assert archive_numbers(administrator, region="520399101") == ["HB-0001"]
    assert archive_numbers(administrator, region="520399100200") == ["QS-0001"]
    assert archive_numbers(administrator, region="520399") == ["HB-0001", "QS-0001"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("52039", "region must be a region code of 2, 4, 6, 9 or 12 digits; got “52039”."),
        ("999999", "region: no region has the code 999999."),
    ],
)
def test_bad_region_filter_is_a_bad_request(administrator, regions, code, message):
    response = logged_in(administrator).get("/api/households/", {"region": code})

    assert response.status_code == 400
    assert response.json() == {"region": [message]}


def test_bbox_filter_keeps_households_inside_the_box(administrator, family, other):
    assert archive_numbers(administrator, in_bbox="107.9,27.2,107.95,27.25") == ["QS-0001"]
    assert archive_numbers(administrator, in_bbox="108.0,27.2,108.05,27.25") == ["HB-0001"]
    assert archive_numbers(administrator, in_bbox="100,20,101,21") == []


@pytest.mark.parametrize(
    "bbox",
    ["107.9,27.2,107.95", "a,b,c,d", "27.2,107.9,27.25,107.95", "108,27,107,28", "nan,1,2,3"],
)
def test_malformed_bbox_is_a_bad_request(administrator, family, bbox):
    response = logged_in(administrator).get("/api/households/", {"in_bbox": bbox})

    assert response.status_code == 400
    assert response.json() == {
        "in_bbox": [
            "in_bbox must be four numbers min_lon,min_lat,max_lon,max_lat in WGS84 degrees, "
            "with min < max, longitudes within -180..180 and latitudes within -90..90; "
            f"got “{bbox}”."
        ]
    }


# --- queries ---------------------------------------------------------------------------------


def test_a_page_of_households_takes_a_constant_number_of_queries(
    township_official, regions, django_assert_num_queries
):
    def add_households(n):
        for _ in range(n):
            household = HouseFactory(household=HouseholdFactory(village=regions["village1"]))
            FamilyMemberFactory.create_batch(2, household=household.household)

    client = logged_in(township_official)
    add_households(2)
    # the session with its user, the user's regions, count, page, current houses
    with django_assert_num_queries(5):
        assert client.get("/api/households/", {"page_size": 20}).json()["count"] == 2
    add_households(18)
    with django_assert_num_queries(5):
        assert len(client.get("/api/households/", {"page_size": 20}).json()["features"]) == 20


def test_household_detail_takes_a_constant_number_of_queries(
    county_official, family, django_assert_max_num_queries
):
    FamilyMemberFactory.create_batch(5, household=family["household"])
    client = logged_in(county_official)

    # the session with its user, the user's regions, household, houses, members
    with django_assert_max_num_queries(5):
        response = client.get(f"/api/households/{family['household'].pk}/")

    assert len(response.json()["properties"]["members"]) == 6


def test_region_list_checks_its_parameters_once_per_request(
    township_official, regions, django_assert_num_queries
):
    client = logged_in(township_official)

    # the session with its user, the user's regions, does the parent exist, count, page
    with django_assert_num_queries(5):
        response = client.get("/api/regions/", {"parent": "520399"})

    assert response.json()["count"] == 1


# --- schema and docs -----------------------------------------------------------------------


def test_openapi_schema_generates_without_warnings_and_validates(tmp_path):
    # --fail-on-warn turns any warning of drf-spectacular into an error.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )

    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/households/{id}/reveal-ids/:" in schema
    assert "WGS84 (EPSG:4326)" in schema


def test_schema_and_docs_are_open_to_anonymous_readers(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Anju API"
    assert docs.status_code == 200


def test_docs_page_loads_swagger_ui_from_our_static_files_only(client, db):
    html = client.get("/api/docs/").content.decode()

    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    # Its start-up script is served by the view itself (no inline script: the CSP).
    assert references.pop(references.index("/api/docs/?script=")) == "/api/docs/?script="
    assert sorted(references) == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    ]
    for reference in references:
        assert finders.find(reference.removeprefix("/static/")), reference
    assert re.findall(r"https?://|=\s*[\"']//", html) == []


@pytest.mark.browser
def test_docs_page_renders_in_a_browser_without_outside_requests(page, live_server):
    page.goto(f"{live_server.url}/api/docs/")

    page.wait_for_selector("#operations-households-households_list")
    assert "Anju API" in page.inner_text(".swagger-ui .info .title")
    assert page.external_requests == []
