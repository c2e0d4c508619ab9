"""The pages that compose every domain: the household file (masking, reveal, its sections)
and the region pages."""

import re

import pytest
from django.utils import timezone

from accounts.models import Role
from housing.models import IdNumberReveal
from tests.factories import HouseFactory, HouseholdFactory
from tests.housing.known import HEAD_ID, HEAD_ID_MASKED, MEMBER_ID, MEMBER_ID_MASKED

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.AUDITOR])
def test_household_file_masks_id_numbers(client, make_user, regions, known, role):
    client.force_login(make_user(role, [regions["township1"]]))
    page = client.get(f"/households/{known.pk}/").content.decode()
    assert f'<dd class="id-number">{HEAD_ID_MASKED}</dd>' in page
    assert f'class="id-number">{MEMBER_ID_MASKED}</td>' in page
    assert HEAD_ID not in page
    assert MEMBER_ID not in page
    assert "Reveal ID numbers" not in page


@pytest.mark.parametrize(
    "role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR]
)
def test_household_file_shows_the_birth_year_only_beside_masked_numbers(
    client, make_user, regions, known, role
):
    # The member of `known` was born 1985-07-02: the date is what the mask hides.
    client.force_login(make_user(role, [regions["township1"]]))
    page = client.get(f"/households/{known.pk}/").content.decode()
    this_year = timezone.localdate().year
    assert '<th scope="col">Birth year (age this year)</th>' in page
    assert f'<td data-label="Birth year (age this year)">1985 ({this_year - 1985})</td>' in page
    assert "1985-07-02" not in page


def test_household_file_shows_birth_dates_to_administrators(client, administrator, known):
    client.force_login(administrator)
    page = client.get(f"/households/{known.pk}/").content.decode()
    assert '<th scope="col">Birth date (age)</th>' in page
    assert f'<td data-label="Birth date (age)">1985-07-02 ({age_on(1985, 7, 2)})</td>' in page


def age_on(year: int, month: int, day: int) -> int:
    today = timezone.localdate()
    return today.year - year - ((today.month, today.day) < (month, day))


def test_household_file_shows_full_id_numbers_to_administrators(client, administrator, known):
    client.force_login(administrator)
    page = client.get(f"/households/{known.pk}/").content.decode()
    assert f'<dd class="id-number">{HEAD_ID}</dd>' in page
    assert f'class="id-number">{MEMBER_ID}</td>' in page


def test_county_official_sees_the_reveal_button(client, county_official, known):
    client.force_login(county_official)
    page = client.get(f"/households/{known.pk}/").content.decode()
    assert f'action="/households/{known.pk}/reveal-ids/"' in page
    assert "Reveal ID numbers" in page


def test_reveal_by_a_county_official_unmasks_logs_and_forbids_caching(
    client, county_official, known
):
    client.force_login(county_official)
    response = client.post(f"/households/{known.pk}/reveal-ids/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<dd class="id-number">{HEAD_ID}</dd>' in page
    assert f'class="id-number">{MEMBER_ID}</td>' in page
    # The revealed number holds the birth date: the page gives it whole too.
    assert f'<td data-label="Birth date (age)">1985-07-02 ({age_on(1985, 7, 2)})</td>' in page
    assert "no-store" in response["Cache-Control"]
    reveal = IdNumberReveal.objects.get()
    assert (reveal.user, reveal.household, reveal.via) == (county_official, known, "page")
    # The language switcher goes back to the plain (masked) file, not to the POST-only URL.
    assert f'name="next" value="/households/{known.pk}/"' in page
    # The reveal is for that response only.
    again = client.get(f"/households/{known.pk}/").content.decode()
    assert HEAD_ID not in again


def test_reveal_by_a_township_official_is_403_and_not_logged(client, township_official, known):
    client.force_login(township_official)
    response = client.post(f"/households/{known.pk}/reveal-ids/")
    assert response.status_code == 403
    assert HEAD_ID not in response.content.decode()
    assert not IdNumberReveal.objects.exists()


def test_reveal_by_get_is_405_and_not_logged(client, county_official, known):
    client.force_login(county_official)
    response = client.get(f"/households/{known.pk}/reveal-ids/")
    assert response.status_code == 405
    assert not IdNumberReveal.objects.exists()


def test_reveal_of_a_household_out_of_scope_is_404(client, make_user, regions, households):
    official = make_user(Role.COUNTY_OFFICIAL, [regions["township1"]])
    client.force_login(official)
    response = client.post(f"/households/{households['village2'].pk}/reveal-ids/")
    assert response.status_code == 404
    assert not IdNumberReveal.objects.exists()


def test_reveal_by_anonymous_redirects_to_login(client, known):
    response = client.post(f"/households/{known.pk}/reveal-ids/")
    assert response.status_code == 302
    assert not IdNumberReveal.objects.exists()


# --- household file -------------------------------------------------------------------


def test_household_file_shows_household_house_members_and_map(client, township_official, known):
    client.force_login(township_official)
    response = client.get(f"/households/{known.pk}/")
    page = response.content.decode()
    assert "王德福" in page and "520399100200-0007" in page
    assert '<a href="/regions/520399100200/">青山村</a>' in page
    assert '<li><a href="/regions/520399100/">龙溪镇</a></li>' in page
    assert "D: dangerous as a whole" in page
    assert "72.50 m²" in page
    assert "王小红" in page
    assert f"1985 ({timezone.localdate().year - 1985})" in page  # the birth year only
    assert "27.205000° N, 107.905000° E (WGS84)" in page
    assert 'class="anju-map anju-map--plain"' in page
    assert "/static/vendor/leaflet/leaflet.js" in page
    assert "Replaced houses" not in page


def test_household_without_location_shows_no_map(client, township_official, regions):
    household = HouseholdFactory(village=regions["village1"], location=None, location_source="")
    client.force_login(township_official)
    page = client.get(f"/households/{household.pk}/").content.decode()
    assert "anju-map" not in page
    assert "leaflet" not in page
    assert "° N" not in page


def test_household_without_house_or_members_shows_no_such_sections(
    client, township_official, regions
):
    household = HouseholdFactory(village=regions["village1"])
    client.force_login(township_official)
    page = client.get(f"/households/{household.pk}/").content.decode()
    assert "Current house" not in page
    assert "Replaced houses" not in page
    assert "Family members" not in page


def test_replaced_house_is_shown_in_its_own_section(client, township_official, regions):
    household = HouseholdFactory(village=regions["village1"])
    HouseFactory(household=household, is_current=False, year_built=1962, safety_grade="D")
    HouseFactory(household=household, year_built=2021, safety_grade="A")
    client.force_login(township_official)
    response = client.get(f"/households/{household.pk}/")
    assert response.context["current_house"].year_built == 2021
    assert [h.year_built for h in response.context["replaced_houses"]] == [1962]
    page = response.content.decode()
    assert "Replaced houses" in page
    assert page.index("2021") < page.index("Replaced houses") < page.index("1962")


EXTERNAL_URL = re.compile(r"https?://(?!testserver[/:\"']|localhost[/:\"']|127\.0\.0\.1[/:\"'])")


def test_household_file_has_no_url_to_another_host(client, township_official, known):
    client.force_login(township_official)
    page = client.get(f"/households/{known.pk}/").content.decode()
    assert "leaflet.js" in page
    attributes = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert attributes
    assert [a for a in attributes if a.startswith(("http:", "https:", "//"))] == []
    assert EXTERNAL_URL.findall(page) == []


# --- region page ----------------------------------------------------------------------


def test_region_page_counts_households_by_grade_per_child(client, county_official, regions):
    for village, grades in [
        ("village1", ["A", "A", "C", "D", ""]),
        ("village2", ["B", "D"]),
    ]:
        for grade in grades:
            HouseFactory(household=HouseholdFactory(village=regions[village]), safety_grade=grade)
    # A replaced house is history, not counted.
    HouseFactory(
        household=HouseholdFactory(village=regions["village2"]), is_current=False, safety_grade="D"
    )
    client.force_login(county_official)
    response = client.get("/regions/520399/")
    rows = [(r["region"].code, r["counts"], r["total"]) for r in response.context["rows"]]
    # Columns: A, B, C, D, not appraised.
    assert rows == [("520399100", [2, 0, 1, 1, 1], 5), ("520399101", [0, 1, 0, 1, 0], 2)]
    assert response.context["totals"] == {"counts": [2, 1, 1, 2, 1], "total": 7}
    page = response.content.decode()
    assert '<a href="/regions/520399100/">龙溪镇</a>' in page
    assert 'href="/households/?region=520399"' in page
    assert 'class="anju-map anju-map--plain"' in page


def test_village_page_has_no_children_table_and_links_to_its_households(
    client, township_official, households
):
    client.force_login(township_official)
    response = client.get("/regions/520399100200/")
    page = response.content.decode()
    assert response.context["rows"] == []
    assert "Households by safety grade" not in page
    assert 'href="/households/?region=520399100200"' in page
    assert '<li><a href="/regions/520399100/">龙溪镇</a></li>' in page


def test_region_without_boundaries_shows_no_map(client, administrator):
    from tests.factories import make_region

    make_region("530102001001", "无界村")
    client.force_login(administrator)
    page = client.get("/regions/530102001/").content.decode()
    assert "anju-map" not in page
