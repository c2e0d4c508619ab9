"""The Django admin: administrators only, every model, and maps that load nothing from outside."""

import datetime
import json
import re

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role, User
from housing import idnumbers
from housing.models import FamilyMember, House, Household, IdNumberReveal, Region
from tests.conftest import ARTIFACTS
from tests.factories import (
    DEMO_PASSWORD,
    FamilyMemberFactory,
    HouseFactory,
    HouseholdFactory,
    key_group,
    make_region,
)

MODELS = [
    ("accounts", "user"),
    ("housing", "region"),
    ("housing", "keygroup"),
    ("housing", "household"),
    ("housing", "house"),
    ("housing", "familymember"),
    ("housing", "idnumberreveal"),
]
LOCAL_HOSTS = {"testserver", "localhost", "127.0.0.1"}


@pytest.fixture
def admin_objects(households, county_official):
    """One object of every model registered in the admin."""
    household = households["village1"]
    return {
        "user": county_official,
        "region": household.village,
        "keygroup": household.key_group,
        "household": household,
        "house": household.houses.get(),
        "familymember": FamilyMemberFactory(household=household),
        "idnumberreveal": IdNumberReveal.objects.create(
            user=county_official, household=household, via="page"
        ),
    }


def changelist_url(app, model):
    return reverse(f"admin:{app}_{model}_changelist")


def change_url(app, model, pk):
    return reverse(f"admin:{app}_{model}_change", args=[pk])


def non_local_urls(html: str) -> list[str]:
    """Absolute URLs to other hosts, except XML namespace names (never fetched)."""
    urls = re.findall(r"(?<!xmlns=\")https?://([^/\s\"'<>:]+)[^\s\"'<>]*", html)
    return [host for host in urls if host not in LOCAL_HOSTS]


def id_number_ending_in_x() -> str:
    for sequence in range(1000):
        number = idnumbers.make("520399", datetime.date(1971, 3, 9), sequence)
        if number.endswith("X"):
            return number
    raise AssertionError("no sequence gives a check character X")


# --- who gets in -------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_administrator_loads_every_changelist_and_change_page(
    client, administrator, admin_objects, app, model
):
    client.force_login(administrator)
    obj = admin_objects[model]

    assert client.get(changelist_url(app, model)).status_code == 200
    response = client.get(change_url(app, model, obj.pk))
    assert response.status_code == 200
    assert response.context["original"] == obj


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_county_official_is_sent_to_the_admin_login(
    client, county_official, admin_objects, app, model
):
    client.force_login(county_official)
    for url in (changelist_url(app, model), change_url(app, model, admin_objects[model].pk)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"/admin/login/?next={url}"


def test_staff_flag_without_the_administrator_role_opens_nothing(client, make_user, households):
    """A staff flag and a model permission granted by mistake do not open the admin."""
    inspector = make_user(Role.INSPECTOR, is_staff=True)
    inspector.user_permissions.add(Permission.objects.get(codename="view_household"))
    client.force_login(inspector)

    for url in (
        changelist_url("housing", "household"),
        change_url("housing", "household", households["village1"].pk),
        reverse("admin:index"),
        reverse("admin:authtoken_tokenproxy_changelist"),
        reverse("admin:auth_group_changelist"),
    ):
        response = client.get(url)
        assert (url, response.status_code, response.url) == (
            url,
            302,
            f"/admin/login/?next={url}",
        )


def test_anonymous_user_is_sent_to_the_admin_login(client, db):
    url = changelist_url("housing", "household")
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"/admin/login/?next={url}"


def test_admin_login_form_logs_an_administrator_in(client, administrator):
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": DEMO_PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


FORGET_SCRIPT = '<script src="/static/field/forget.js" data-scope="/field/"></script>'


def test_admin_logout_clears_the_sites_cache_and_goes_to_the_login_page(client, administrator):
    """The admin's "Log out" is the site's: the browser drops its HTTP cache of the site, and
    the login page it lands on has the field page's worker forget its user's copy."""
    client.force_login(administrator)
    page = client.get("/admin/").content.decode()
    assert '<form id="logout-form" method="post" action="/admin/logout/">' in page

    response = client.post("/admin/logout/")

    assert response.status_code == 302
    assert response.url == "/login/"
    assert response["Clear-Site-Data"] == '"cache"'
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").url == "/admin/login/?next=/admin/"
    assert FORGET_SCRIPT in client.get("/login/").content.decode()
    assert client.get("/admin/logout/").status_code == 405  # a GET logs nobody out


def test_admin_login_page_forgets_the_field_pages_copy_when_nobody_is_logged_in(client, make_user):
    assert FORGET_SCRIPT in client.get("/admin/login/").content.decode()
    # Someone logged in but not an administrator is sent here too: their field page stays.
    client.force_login(make_user(Role.INSPECTOR))
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert "You are authenticated as" in page
    assert "forget.js" not in page


# --- the maps load nothing from outside ------------------------------------------------


@pytest.mark.parametrize("model", ["region", "household"])
def test_change_pages_with_a_map_reference_no_other_host(
    client, administrator, admin_objects, model
):
    client.force_login(administrator)
    html = client.get(change_url("housing", model, admin_objects[model].pk)).content.decode()

    assert non_local_urls(html) == []
    assert '<script src="/static/vendor/ol/ol.js"></script>' in html
    assert '<link href="/static/vendor/ol/ol.css" media="all" rel="stylesheet">' in html
    assert "cdn.jsdelivr.net" not in html
    assert "ol.source.OSM" not in html


def test_household_map_shows_the_village_outline_and_the_point(client, administrator, households):
    client.force_login(administrator)
    household = households["village1"]
    response = client.get(change_url("housing", "household", household.pk))

    html = response.content.decode()
    outline = re.search(
        r'<script id="id_location_context" type="application/json">(.*?)</script>', html
    ).group(1)
    assert GEOSGeometry(outline).equals(household.village.boundary)
    assert "Dashed outline: 青山村 (520399100200)." in html
    # The value is in the map's projection (EPSG:3857), as Django's widget expects.
    value = response.context["adminform"].form["location"].value()
    assert (round(value.x, 6), round(value.y, 6)) == (107.905, 27.205)


def test_region_map_shows_the_parent_outline(client, administrator, regions):
    client.force_login(administrator)
    html = client.get(change_url("housing", "region", regions["village1"].pk)).content.decode()

    outline = re.search(
        r'<script id="id_boundary_context" type="application/json">(.*?)</script>', html
    ).group(1)
    assert GEOSGeometry(outline).equals(regions["township1"].boundary)
    assert "Dashed outline: 龙溪镇 (520399100)." in html


def test_household_add_page_map_has_no_outline(client, administrator, regions):
    client.force_login(administrator)
    html = client.get(reverse("admin:housing_household_add")).content.decode()

    assert '<script id="id_location_context" type="application/json">null</script>' in html
    assert "No base map is loaded, so this map works offline." in html
    assert non_local_urls(html) == []


# --- searching and listing --------------------------------------------------------------


def test_household_search_by_archive_number_prefix(client, administrator, regions):
    for archive_no in ("YQ-2023-001", "YQ-2023-002", "YQ-2024-001"):
        HouseholdFactory(archive_no=archive_no, village=regions["village1"])
    client.force_login(administrator)

    response = client.get(changelist_url("housing", "household"), {"q": "YQ-2023"})

    found = [h.archive_no for h in response.context["cl"].result_list]
    assert found == ["YQ-2023-001", "YQ-2023-002"]


def test_household_search_by_id_number_is_exact_for_head_and_members(
    client, administrator, regions
):
    head_number = id_number_ending_in_x()
    with_head = HouseholdFactory(archive_no="YQ-1", head_id_number=head_number)
    with_member = HouseholdFactory(archive_no="YQ-2")
    member = FamilyMemberFactory(household=with_member)
    HouseholdFactory(archive_no="YQ-3")
    client.force_login(administrator)
    url = changelist_url("housing", "household")

    def search(term):
        return [h.archive_no for h in client.get(url, {"q": term}).context["cl"].result_list]

    assert search(head_number.lower()) == [with_head.archive_no]
    assert search(member.id_number) == [with_member.archive_no]
    assert search(head_number[:10]) == []


def test_village_autocomplete_offers_village_level_regions_only(client, administrator, regions):
    client.force_login(administrator)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "housing",
            "model_name": "household",
            "field_name": "village",
            "term": "5203",
        },
    )

    assert [r["text"] for r in response.json()["results"]] == [
        "青山村 (520399100200)",
        "河坝村 (520399101200)",
    ]


def test_user_regions_autocomplete_offers_every_level(client, administrator, regions):
    client.force_login(administrator)

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "accounts", "model_name": "user", "field_name": "regions", "term": "龙溪"},
    )

    assert response.json()["results"] == [
        {"id": str(regions["township1"].pk), "text": "龙溪镇 (520399100)"}
    ]


def _add_rows(model, numbers, regions, county_official):
    village = regions["village1"]
    for i in numbers:
        if model == "user":
            User.objects.create(username=f"extra{i}", role=Role.INSPECTOR)
        elif model == "region":
            make_region(f"52039910030{i}", boundary=regions["village1"].boundary)
        elif model == "keygroup":
            key_group(f"group_{i}")
        elif model == "household":
            HouseholdFactory(village=village, key_group=key_group(f"group_{i}"))
        elif model == "house":
            HouseFactory(household=HouseholdFactory(village=village))
        elif model == "familymember":
            FamilyMemberFactory(household=HouseholdFactory(village=village))
        elif model == "idnumberreveal":
            IdNumberReveal.objects.create(
                user=county_official, household=HouseholdFactory(village=village), via="api"
            )


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_changelist_query_count_does_not_grow_with_rows(
    client, administrator, admin_objects, regions, county_official, app, model
):
    client.force_login(administrator)
    url = changelist_url(app, model)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    _add_rows(model, range(1), regions, county_official)
    few = count_queries()
    _add_rows(model, range(1, 5), regions, county_official)
    assert count_queries() == few


# --- the audit log cannot be written or erased -------------------------------------------


def test_id_number_reveal_admin_grants_no_add_change_or_delete(rf, administrator, admin_objects):
    request = rf.get("/admin/")
    request.user = administrator
    reveal_admin = site._registry[IdNumberReveal]
    reveal = admin_objects["idnumberreveal"]

    assert reveal_admin.has_view_permission(request, reveal) is True
    assert reveal_admin.has_add_permission(request) is False
    assert reveal_admin.has_change_permission(request, reveal) is False
    assert reveal_admin.has_delete_permission(request, reveal) is False


def test_id_number_reveal_cannot_be_added_edited_or_deleted_through_the_admin(
    client, administrator, admin_objects
):
    reveal = admin_objects["idnumberreveal"]
    client.force_login(administrator)

    assert client.get(reverse("admin:housing_idnumberreveal_add")).status_code == 403
    edit = client.post(change_url("housing", "idnumberreveal", reveal.pk), {"via": "forged"})
    assert edit.status_code == 403
    delete_url = reverse("admin:housing_idnumberreveal_delete", args=[reveal.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    reveal.refresh_from_db()
    assert reveal.via == "page"


def test_household_with_id_number_reveals_cannot_be_deleted_through_the_admin(
    client, administrator, admin_objects
):
    household = admin_objects["household"]
    client.force_login(administrator)
    url = reverse("admin:housing_household_delete", args=[household.pk])

    response = client.post(url, {"post": "yes"})

    # The reveal log protects its household (on_delete=PROTECT): nothing is deleted.
    assert response.status_code == 200
    assert "<title>Cannot delete household | Anju administration</title>" in response.text
    assert Household.objects.filter(pk=household.pk).exists()
    assert IdNumberReveal.objects.filter(household=household).count() == 1


# --- editing ----------------------------------------------------------------------------


def household_form_data(household, houses=(), members=()):
    """The POST body of the household change form, with its two inlines."""
    data = {
        "archive_no": household.archive_no,
        "village": household.village_id,
        "head_name": household.head_name,
        "head_id_number": household.head_id_number,
        "phone": household.phone,
        "address": household.address,
        "location": household.location.ewkt if household.location else "",
        "location_source": household.location_source,
        "key_group": household.key_group_id or "",
        "notes": household.notes,
        "houses-TOTAL_FORMS": len(houses),
        "houses-INITIAL_FORMS": sum(1 for h in houses if h.get("id")),
        "houses-MIN_NUM_FORMS": 0,
        "houses-MAX_NUM_FORMS": 1000,
        "members-TOTAL_FORMS": len(members),
        "members-INITIAL_FORMS": sum(1 for m in members if m.get("id")),
        "members-MIN_NUM_FORMS": 0,
        "members-MAX_NUM_FORMS": 1000,
    }
    if household.poverty_relocation:
        data["poverty_relocation"] = "on"
    for prefix, rows in (("houses", houses), ("members", members)):
        for i, row in enumerate(rows):
            data[f"{prefix}-{i}-household"] = household.pk
            for key, value in row.items():
                if value is True:
                    data[f"{prefix}-{i}-{key}"] = "on"
                elif value is not False:
                    data[f"{prefix}-{i}-{key}"] = value
    return data


def house_row(house=None, *, is_current):
    return {
        "id": house.pk if house else "",
        "is_current": is_current,
        "structure_type": "masonry",
        "storeys": 2,
        "floor_area": "80.00",
        "year_built": 2024,
        "safety_grade": "A",
        "renovation_status": "completed",
    }


def test_household_inline_replaces_the_current_house_in_one_save(client, administrator, households):
    household = households["village1"]
    old = household.houses.get()
    client.force_login(administrator)

    response = client.post(
        change_url("housing", "household", household.pk),
        household_form_data(
            household, houses=[house_row(old, is_current=False), house_row(is_current=True)]
        ),
    )

    assert response.status_code == 302
    assert list(household.houses.order_by("id").values_list("is_current", flat=True)) == [
        False,
        True,
    ]


def test_household_inline_refuses_two_current_houses(client, administrator, households):
    household = households["village1"]
    old = household.houses.get()
    client.force_login(administrator)

    response = client.post(
        change_url("housing", "household", household.pk),
        household_form_data(
            household, houses=[house_row(old, is_current=True), house_row(is_current=True)]
        ),
    )

    assert response.status_code == 200
    house_formset = response.context["inline_admin_formsets"][0].formset
    assert house_formset.non_form_errors() == [
        "A household has one current house; 2 are ticked as current. "
        "Untick the house that was replaced."
    ]
    assert House.objects.filter(household=household).count() == 1


def test_family_member_inline_normalises_the_id_number_and_derives_sex_and_birth_date(
    client, administrator, households
):
    household = households["village1"]
    number = id_number_ending_in_x()
    client.force_login(administrator)

    response = client.post(
        change_url("housing", "household", household.pk),
        household_form_data(
            household,
            houses=[house_row(household.houses.get(), is_current=True)],
            members=[{"id": "", "name": "王芳", "relation": "spouse", "id_number": number.lower()}],
        ),
    )

    assert response.status_code == 302
    member = FamilyMember.objects.get(household=household)
    info = idnumbers.parse(number)
    assert (member.id_number, member.sex, member.birth_date) == (number, info.sex, info.birth_date)


def test_household_form_reports_a_bad_id_number_and_changes_nothing(
    client, administrator, households
):
    household = households["village1"]
    client.force_login(administrator)
    data = household_form_data(
        household, houses=[house_row(household.houses.get(), is_current=True)]
    )
    data["head_id_number"] = "52039919600101001"
    data["head_name"] = "改名"

    response = client.post(change_url("housing", "household", household.pk), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["head_id_number"] == [
        "An ID number has 18 characters; this one has 17."
    ]
    household.refresh_from_db()
    assert household.head_name != "改名"


def test_region_admin_reports_a_code_that_does_not_match_its_level(client, administrator, regions):
    client.force_login(administrator)

    response = client.post(
        reverse("admin:housing_region_add"),
        {
            "code": "52039910",
            "name": "错码村",
            "level": "village",
            "parent": regions["township1"].pk,
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["code"] == [
        "A Village code has 12 digits; 52039910 has 8."
    ]
    assert not Region.objects.filter(code="52039910").exists()


def test_user_admin_saves_role_and_regions(client, administrator, regions):
    client.force_login(administrator)

    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "township2",
            "usable_password": "true",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
            "role": Role.TOWNSHIP_OFFICIAL,
            "regions": [regions["township2"].pk],
        },
    )

    assert response.status_code == 302
    user = User.objects.get(username="township2")
    assert user.role == Role.TOWNSHIP_OFFICIAL
    assert list(user.regions.values_list("code", flat=True)) == ["520399101"]
    assert (user.is_staff, user.is_superuser) == (False, False)


def test_user_admin_keeps_the_administrator_role_and_admin_flags_together(
    client, administrator, county_official
):
    client.force_login(administrator)
    url = reverse("admin:accounts_user_add")
    base = {
        "username": "newadmin",
        "usable_password": "true",
        "password1": "a-long-pass-phrase-42",
        "password2": "a-long-pass-phrase-42",
    }

    no_flags = client.post(url, {**base, "role": Role.ADMINISTRATOR})
    flags_no_role = client.post(
        url, {**base, "role": Role.AUDITOR, "is_staff": "on", "is_superuser": "on"}
    )
    both = client.post(
        url, {**base, "role": Role.ADMINISTRATOR, "is_staff": "on", "is_superuser": "on"}
    )

    assert no_flags.context["adminform"].form.errors["role"] == [
        "An administrator needs both staff status and superuser status: "
        "tick them, or choose another role."
    ]
    assert flags_no_role.context["adminform"].form.errors["role"] == [
        "Staff status and superuser status are for administrators only: "
        "choose the role Administrator, or untick them."
    ]
    assert both.status_code == 302
    assert User.objects.get(username="newadmin").is_administrator is True


# --- in a real browser, with everything outside the live server blocked --------------------


def admin_browser_login(page, live_server, user, password=DEMO_PASSWORD):
    """Log in through the admin's own form (its submit is an <input>, not a <button>)."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.click("#login-form [type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.mark.browser
def test_household_map_works_offline_and_moving_the_point_saves_it(
    page, live_server, administrator, households
):
    household = households["village1"]
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error.stack)))
    admin_browser_login(page, live_server, administrator)

    page.goto(f"{live_server.url}/admin/housing/household/{household.pk}/change/")
    page.locator("#id_location_div_map").scroll_into_view_if_needed()
    page.wait_for_selector("#id_location_map .ol-viewport canvas")
    page.wait_for_function("() => geodjango_location.map.isRendered()")
    layers = page.evaluate(
        """() => ({
            point: geodjango_location.featureCollection.getLength(),
            outline: geodjango_location.options.base_layer.getSource().getFeatures().length,
            tileLayers: geodjango_location.map.getAllLayers()
                .filter(layer => layer instanceof ol.layer.Tile).length,
        })"""
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-household-map.png"))

    # Drag the point the way the widget's Modify interaction does: change its geometry, and
    # the widget writes the new GeoJSON (EPSG:3857) into its textarea.
    serialized = page.evaluate(
        """([lon, lat]) => {
            const feature = geodjango_location.featureCollection.item(0);
            feature.getGeometry().setCoordinates(ol.proj.fromLonLat([lon, lat]));
            return document.getElementById('id_location').value;
        }""",
        [107.91, 27.21],
    )
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    assert layers == {"point": 1, "outline": 1, "tileLayers": 0}
    assert json.loads(serialized)["type"] == "Point"
    household.refresh_from_db()
    assert (round(household.location.x, 6), round(household.location.y, 6)) == (107.91, 27.21)
    assert household.location.srid == 4326
    assert errors == []
    assert page.external_requests == []


@pytest.mark.browser
def test_region_map_works_offline_with_the_parent_outline(
    page, live_server, administrator, regions
):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error.stack)))
    admin_browser_login(page, live_server, administrator)

    page.goto(f"{live_server.url}/admin/housing/region/{regions['village1'].pk}/change/")
    page.wait_for_selector("#id_boundary_map .ol-viewport canvas")
    page.wait_for_function("() => geodjango_boundary.map.isRendered()")
    layers = page.evaluate(
        """() => ({
            boundary: geodjango_boundary.featureCollection.getLength(),
            outline: geodjango_boundary.options.base_layer.getSource().getFeatures().length,
        })"""
    )

    assert layers == {"boundary": 1, "outline": 1}
    assert errors == []
    assert page.external_requests == []


@pytest.mark.browser
def test_the_admins_log_out_button_ends_on_the_login_page_that_forgets_the_field_page(
    page, live_server, administrator
):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error.stack)))
    admin_browser_login(page, live_server, administrator)

    with page.expect_response(lambda r: r.url.endswith("/admin/logout/")) as answer:
        page.click("#logout-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/login/")
    page.wait_for_selector("html[data-field-forgotten=true]", state="attached")

    assert answer.value.all_headers()["clear-site-data"] == '"cache"'
    page.goto(f"{live_server.url}/admin/")
    assert page.url == f"{live_server.url}/admin/login/?next=/admin/"
    page.wait_for_selector("html[data-field-forgotten=true]", state="attached")
    assert errors == []
    assert page.external_requests == []
