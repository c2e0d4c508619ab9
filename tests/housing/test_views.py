"""The registry's server-rendered pages: scope, search, filters, masking, reveal, counts."""

import datetime
import re

import pytest
from django.urls import reverse

from accounts.models import Role
from housing.models import RenovationStatus, SafetyGrade
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory, key_group
from tests.housing.known import HEAD_ID, HEAD_ID_MASKED, MEMBER_ID

pytestmark = pytest.mark.django_db


def list_url(**params):
    from urllib.parse import urlencode

    return reverse("housing:household_list") + ("?" + urlencode(params) if params else "")


def archive_numbers(response) -> list[str]:
    return [h.archive_no for h in response.context["page"].households]


# --- access ---------------------------------------------------------------------------


def test_root_redirects_a_logged_in_user_to_the_household_list(client, township_official):
    client.force_login(township_official)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/households/"


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/households/",
        "/households/{village1}/",
        "/regions/",
        "/regions/520399100/",
    ],
)
def test_anonymous_user_is_sent_to_login(client, households, url):
    url = url.format(village1=households["village1"].pk)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_pages_in_scope_answer_200_for_a_township_official(client, township_official, households):
    client.force_login(township_official)
    for url in [
        "/households/",
        f"/households/{households['village1'].pk}/",
        "/regions/",
        "/regions/520399100/",
        "/regions/520399100200/",
    ]:
        assert client.get(url).status_code == 200, url


def test_household_of_another_township_is_404(client, township_official, households):
    client.force_login(township_official)
    assert client.get(f"/households/{households['village2'].pk}/").status_code == 404


@pytest.mark.parametrize("code", ["520399101", "520399101200", "520399", "999999"])
def test_region_outside_scope_or_unknown_is_404(client, township_official, regions, code):
    client.force_login(township_official)
    assert client.get(f"/regions/{code}/").status_code == 404


def test_household_list_shows_only_the_users_regions(client, township_official, households):
    client.force_login(township_official)
    response = client.get(list_url())
    assert archive_numbers(response) == [households["village1"].archive_no]
    assert households["village2"].archive_no not in response.content.decode()


def test_region_index_lists_the_users_root_regions(client, township_official, regions):
    client.force_login(township_official)
    response = client.get("/regions/")
    assert [r.code for r in response.context["regions"]] == ["520399100"]
    assert 'href="/regions/520399100/"' in response.content.decode()


def test_navigation_shows_admin_only_to_administrators(client, county_official, administrator):
    client.force_login(county_official)
    page = client.get("/households/").content.decode()
    assert 'href="/admin/"' not in page
    assert 'href="/api/docs/"' in page
    assert "County official" in page
    client.force_login(administrator)
    assert 'href="/admin/"' in client.get("/households/").content.decode()


# --- search ---------------------------------------------------------------------------


def test_search_by_part_of_the_name(client, county_official, known, households):
    client.force_login(county_official)
    assert archive_numbers(client.get(list_url(q="德福"))) == ["520399100200-0007"]


def test_administrators_search_by_the_heads_full_id_number(
    client, administrator, known, households
):
    client.force_login(administrator)
    assert archive_numbers(client.get(list_url(q=HEAD_ID))) == ["520399100200-0007"]


def test_administrators_search_by_a_members_full_id_number_lowercase_x(
    client, administrator, known
):
    client.force_login(administrator)
    assert archive_numbers(client.get(list_url(q=MEMBER_ID.lower()))) == ["520399100200-0007"]


@pytest.mark.parametrize(
    "role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR]
)
def test_search_by_a_whole_id_number_is_refused_to_all_but_administrators(
    client, make_user, regions, known, role
):
    # An exact match would confirm a guess: an oracle for the numbers a mask leaves.
    client.force_login(make_user(role, [regions["county"]]))
    for number in (HEAD_ID, MEMBER_ID.lower(), HEAD_ID[:17] + "9"):
        response = client.get(list_url(q=number))
        assert response.status_code == 200
        assert response.context["page"] is None
        assert response.context["form"].errors == {
            "q": [
                "Only administrators may search by a whole ID number; search by the name or "
                "the archive number instead."
            ]
        }
        assert "520399100200-0007" not in response.content.decode()


def test_the_selector_finds_nothing_by_id_number_for_others_even_without_the_form(
    county_official, known
):
    from housing.selectors import HouseholdFilters, household_list

    assert not household_list(user=county_official, filters=HouseholdFilters(q=HEAD_ID)).exists()


def test_part_of_an_id_number_does_not_match_by_id(client, county_official, known, households):
    client.force_login(county_official)
    response = client.get(list_url(q=HEAD_ID[:14]))
    assert archive_numbers(response) == []
    assert "0 households" in response.content.decode()


def test_search_by_archive_number_prefix(client, county_official, known, households):
    client.force_login(county_official)
    assert archive_numbers(client.get(list_url(q="520399100200-00"))) == ["520399100200-0007"]
    assert archive_numbers(client.get(list_url(q="0007"))) == []


# --- filters --------------------------------------------------------------------------


@pytest.fixture
def graded(regions):
    """Village 1: A, C (planned), not appraised (no key group); village 2: D (in progress)."""
    made = {}
    for archive, village, grade, status, group in [
        ("G-A", "village1", SafetyGrade.A, RenovationStatus.NONE, "minimum_income"),
        ("G-C", "village1", SafetyGrade.C, RenovationStatus.PLANNED, "registered_poor"),
        ("G-N", "village1", SafetyGrade.NOT_APPRAISED, RenovationStatus.NONE, None),
        ("G-D", "village2", SafetyGrade.D, RenovationStatus.IN_PROGRESS, "minimum_income"),
    ]:
        household = HouseholdFactory(
            archive_no=archive,
            village=regions[village],
            key_group=key_group(group) if group else None,
        )
        HouseFactory(household=household, safety_grade=grade, renovation_status=status)
        made[archive] = household
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["G-A", "G-C", "G-D", "G-N"]),
        ({"region": "520399100"}, ["G-A", "G-C", "G-N"]),
        ({"region": "520399101200"}, ["G-D"]),
        ({"grade": "A"}, ["G-A"]),
        ({"grade": "D"}, ["G-D"]),
        ({"grade": "none"}, ["G-N"]),
        ({"key_group": "registered_poor"}, ["G-C"]),
        ({"key_group": "minimum_income"}, ["G-A", "G-D"]),
        ({"key_group": "none"}, ["G-N"]),
        ({"renovation_status": "planned"}, ["G-C"]),
        ({"renovation_status": "in_progress"}, ["G-D"]),
        ({"region": "520399100", "grade": "C", "renovation_status": "planned"}, ["G-C"]),
    ],
)
def test_each_filter(client, county_official, graded, params, expected):
    client.force_login(county_official)
    assert archive_numbers(client.get(list_url(**params))) == expected


def test_region_filter_outside_scope_is_an_error_that_shows_no_households(
    client, township_official, graded
):
    client.force_login(township_official)
    response = client.get(list_url(region="520399101"))
    assert response.status_code == 200
    assert response.context["page"] is None
    assert response.context["form"].errors == {
        "region": ["There is no region 520399101 among your regions."]
    }
    assert "G-D" not in response.content.decode()


def test_unknown_grade_is_an_error(client, county_official, graded):
    client.force_login(county_official)
    response = client.get(list_url(grade="E"))
    assert response.context["form"].errors == {
        "grade": ["Select a valid choice. E is not one of the available choices."]
    }


def test_region_select_offers_the_users_regions_by_code(client, township_official, regions):
    client.force_login(township_official)
    page = client.get(list_url()).content.decode()
    options = re.findall(r'<option value="(\d+)"', page)
    assert options == ["520399100", "520399100200"]


# --- pagination -----------------------------------------------------------------------


def link(response, rel: str) -> str | None:
    """The href of the pagination link with this rel, unescaped, or None."""
    import html

    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', response.content.decode())
    return html.unescape(found.group(1)) if found else None


def follow(client, response, rel: str):
    return client.get(reverse("housing:household_list") + link(response, rel))


def test_pagination_50_per_page_with_total_and_filters_kept(client, county_official, regions):
    for n in range(51):
        HouseFactory(
            household=HouseholdFactory(archive_no=f"P-{n:03d}", village=regions["village1"]),
            safety_grade=SafetyGrade.C,
        )
    HouseFactory(
        household=HouseholdFactory(archive_no="P-A", village=regions["village1"]), safety_grade="A"
    )
    client.force_login(county_official)
    first = client.get(list_url(grade="C"))
    assert len(first.context["page"].households) == 50
    page = first.content.decode()
    assert "51 households" in page
    assert "Page 1 of 2" in page
    assert link(first, "prev") is None and link(first, "first") is None
    assert link(first, "last") == "?grade=C&page=2"
    assert re.fullmatch(r"\?grade=C&after=[\w-]+&page=2", link(first, "next"))
    second = follow(client, first, "next")
    assert archive_numbers(second) == ["P-050"]
    assert "51 households" in second.content.decode()
    assert "Page 2 of 2" in second.content.decode()
    assert link(second, "next") is None and link(second, "last") is None
    assert link(second, "prev") == link(second, "first") == "?grade=C"
    assert archive_numbers(follow(client, first, "last")) == ["P-050"]


@pytest.fixture
def many(regions):
    """120 households in two villages; the heads share three names (ties for the name sort)."""
    made = []
    for n in range(120):
        household = HouseholdFactory(
            archive_no=f"M-{(n * 37) % 120:03d}",
            head_name=["王芳", "李伟", "张敏"][n % 3],
            village=regions["village1" if n % 4 else "village2"],
        )
        HouseFactory(household=household, safety_grade=SafetyGrade.D if n % 5 == 0 else "B")
        made.append(household)
    return made


def flat(pages: list[list[str]]) -> list[str]:
    return [number for page in pages for number in page]


def walk(client, url: str, rel: str) -> list[list[str]]:
    """The archive numbers of every page, following ``rel`` links from ``url``."""
    response = client.get(url)
    pages = [archive_numbers(response)]
    while link(response, rel):
        response = follow(client, response, rel)
        pages.append(archive_numbers(response))
    return pages


def test_sorting_by_name_pages_through_ties_in_id_order_both_ways(client, county_official, many):
    client.force_login(county_official)
    expected = [h.archive_no for h in sorted(many, key=lambda h: (h.head_name, h.pk))]
    forward = walk(client, list_url(sort="head_name"), "next")
    assert [len(p) for p in forward] == [50, 50, 20]
    assert flat(forward) == expected
    # From the last page back to the first: the same pages, in reverse.
    backward = walk(client, list_url(sort="head_name", page=3), "prev")
    assert backward == forward[::-1]
    second = client.get(list_url(sort="head_name", page=2))  # a typed page number
    assert archive_numbers(second) == forward[1]
    assert "Page 2 of 3" in second.content.decode()


def test_the_default_order_is_by_archive_number_and_the_header_switches_it(
    client, county_official, many
):
    client.force_login(county_official)
    response = client.get(list_url())
    assert flat(walk(client, list_url(), "next")) == sorted(h.archive_no for h in many)
    page = response.content.decode()
    assert '<th scope="col" aria-sort="ascending">Archive number</th>' in page
    assert '<a href="?sort=head_name" title="Sort by name">Head of household</a>' in page


def test_paging_keeps_filters_and_scope(client, township_official, many):
    client.force_login(township_official)
    # Township 1 holds village1 only: 90 of the 120, of which grade D are n % 5 == 0.
    in_scope = [h for n, h in enumerate(many) if n % 4]
    expected = sorted(h.archive_no for n, h in enumerate(many) if n % 4 and n % 5 == 0)
    assert flat(walk(client, list_url(grade="D"), "next")) == expected
    pages = walk(client, list_url(), "next")
    assert [len(p) for p in pages] == [50, 40]
    assert flat(pages) == sorted(h.archive_no for h in in_scope)


def test_a_cursor_from_outside_the_scope_or_garbage_shows_nothing_outside(
    client, township_official, many
):
    from housing.selectors import Cursor

    client.force_login(township_official)
    outside = many[0]  # village2, township 2
    cursor = Cursor.of(outside, "archive_no").encode()
    numbers = archive_numbers(client.get(list_url(after=cursor, page=2)))
    assert outside.archive_no not in numbers
    assert all(n > outside.archive_no for n in numbers)
    # A cursor that is not one (or of another sort) is ignored: the page by its number.
    by_number = archive_numbers(client.get(list_url(page=2)))
    assert len(by_number) == 40
    forged = [
        Cursor(sort="archive_no", key=key, pk=pk).encode()
        for key, pk in [("5203\x00", outside.pk), ("x", True), ("x", 2**70), ("x", -1)]
    ]
    for bad in ["%%%", "bm90IGpzb24", Cursor.of(outside, "head_name").encode(), *forged]:
        response = client.get(list_url(after=bad, page=2))
        assert response.status_code == 200
        assert archive_numbers(response) == by_number


def count_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_total_is_counted_once_per_data_version(client, county_official, many):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(county_official)
    with CaptureQueriesContext(connection) as queries:
        assert "24 households" in client.get(list_url(grade="D")).content.decode()
    assert len(count_queries(queries)) == 1
    with CaptureQueriesContext(connection) as queries:
        assert "24 households" in client.get(list_url(grade="D")).content.decode()
    assert count_queries(queries) == []
    # A write (any write leaves a history row) makes the next request count again.
    house = many[1].current_house
    house.safety_grade = SafetyGrade.D
    house.save()
    with CaptureQueriesContext(connection) as queries:
        assert "25 households" in client.get(list_url(grade="D")).content.decode()
    assert len(count_queries(queries)) == 1


def test_a_next_page_reads_from_the_cursor_without_count_or_offset(
    client, county_official, many, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(county_official)
    first = client.get(list_url())
    with CaptureQueriesContext(connection) as queries:
        third = follow(client, follow(client, first, "next"), "next")
    assert len(archive_numbers(third)) == 20
    assert count_queries(queries) == []
    assert not [q for q in queries.captured_queries if "OFFSET" in q["sql"].upper()]
    with django_assert_max_num_queries(9):
        follow(client, first, "next")
    with django_assert_max_num_queries(9):
        follow(client, first, "last")


def test_a_page_number_out_of_range_shows_the_last_page(client, county_official, known):
    client.force_login(county_official)
    assert archive_numbers(client.get(list_url(page=9))) == ["520399100200-0007"]


# --- ID numbers -----------------------------------------------------------------------


def test_list_masks_id_numbers_for_officials(client, county_official, known):
    client.force_login(county_official)
    page = client.get(list_url()).content.decode()
    assert HEAD_ID_MASKED in page
    assert HEAD_ID not in page


def test_list_shows_full_id_numbers_to_administrators(client, administrator, known):
    client.force_login(administrator)
    page = client.get(list_url()).content.decode()
    assert HEAD_ID in page
    assert HEAD_ID_MASKED not in page


# --- language -------------------------------------------------------------------------


def test_page_language_follows_the_browser_and_offers_the_switcher(client, township_official):
    client.force_login(township_official)
    page = client.get("/households/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="zh-hans">' in page
    assert '<form method="post" action="/i18n/setlang/" class="language-form">' in page
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in page
    assert '<option value="en" lang="en">English</option>' in page


def test_switching_language_by_post_sets_it_for_later_pages(client, township_official):
    client.force_login(township_official)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/households/"})
    assert response.status_code == 302
    assert response["Location"] == "/households/"
    assert '<html lang="zh-hans">' in client.get("/households/").content.decode()


def test_age_counts_whole_years():
    from django.utils import timezone

    from housing.templatetags.anju import age

    today = timezone.localdate()
    assert age(datetime.date(today.year - 30, 1, 1)) == 30
    last_day = (today.month, today.day) == (12, 31)
    assert age(datetime.date(today.year - 30, 12, 31)) == (30 if last_day else 29)
    assert age(None) == ""


# --- queries --------------------------------------------------------------------------


def test_list_and_file_queries_do_not_grow_with_the_data(
    client, county_official, regions, django_assert_max_num_queries
):
    for n in range(12):
        household = HouseholdFactory(village=regions["village1" if n % 2 else "village2"])
        HouseFactory(household=household)
        FamilyMemberFactory(household=household)
        FamilyMemberFactory(household=household)
    client.force_login(county_official)
    with django_assert_max_num_queries(10):
        assert client.get(list_url()).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(f"/households/{household.pk}/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/regions/520399/").status_code == 200


def test_region_filter_is_a_code_box_when_there_are_too_many_regions(
    client, county_official, regions, monkeypatch
):
    monkeypatch.setattr("housing.forms.MAX_REGION_CHOICES", 2)
    client.force_login(county_official)
    response = client.get(list_url(region="520399101"))
    page = response.content.decode()
    assert '<input type="text" name="region" value="520399101"' in page
    assert '<select name="region"' not in page
