import pytest

from accounts.models import Role
from accounts.scoping import scope, user_region_codes
from housing.models import Household, Region
from housing.selectors import (
    HouseholdFilters,
    household_get,
    household_list,
    region_children_grade_counts,
)
from tests.factories import HouseFactory, HouseholdFactory


@pytest.mark.django_db
def test_township_official_sees_only_their_township(township_official, households):
    visible = household_list(user=township_official)
    assert list(visible) == [households["village1"]]


@pytest.mark.django_db
def test_region_filter_cannot_widen_scope(township_official, households, regions):
    visible = household_list(
        user=township_official, filters=HouseholdFilters(region=regions["township2"].code)
    )
    assert list(visible) == []


@pytest.mark.django_db
def test_household_out_of_scope_is_404(township_official, households):
    from django.http import Http404

    with pytest.raises(Http404):
        household_get(user=township_official, pk=households["village2"].pk)


@pytest.mark.django_db
def test_user_without_regions_sees_nothing(make_user, households):
    assert household_list(user=make_user(Role.INSPECTOR)).count() == 0


@pytest.mark.django_db
def test_administrator_sees_everything(administrator, households):
    assert household_list(user=administrator).count() == 2
    assert user_region_codes(administrator) is None


@pytest.mark.django_db
def test_nested_regions_are_pruned_to_the_widest(make_user, regions):
    user = make_user(Role.COUNTY_OFFICIAL, [regions["county"], regions["township1"]])
    assert user_region_codes(user) == ["520399"]


@pytest.mark.django_db
def test_scope_applies_to_regions_by_code(township_official, regions):
    codes = set(
        scope(Region.objects.all(), township_official, "code").values_list("code", flat=True)
    )
    assert codes == {"520399100", "520399100200"}


@pytest.mark.django_db
def test_search_by_member_id_number_finds_the_household_for_an_administrator_only(
    administrator, county_official, households
):
    from tests.factories import FamilyMemberFactory

    member = FamilyMemberFactory(household=households["village2"])
    found = household_list(user=administrator, filters=HouseholdFilters(q=member.id_number))
    assert list(found) == [households["village2"]]
    # A whole-number search would confirm a guessed ID: for other roles it finds nothing.
    found = household_list(user=county_official, filters=HouseholdFilters(q=member.id_number))
    assert list(found) == []


@pytest.mark.django_db
def test_children_grade_counts_are_one_aggregate(
    county_official, regions, django_assert_num_queries
):
    for grade in ["A", "C", "C", "D", ""]:
        HouseFactory(household=HouseholdFactory(village=regions["village1"]), safety_grade=grade)
    HouseFactory(household=HouseholdFactory(village=regions["village2"]), safety_grade="B")
    with django_assert_num_queries(3):
        rows = region_children_grade_counts(user=county_official, region=regions["county"])
    assert [
        (r["region"].code, r["A"], r["B"], r["C"], r["D"], r[""], r["total"]) for r in rows
    ] == [
        ("520399100", 1, 0, 2, 1, 1, 5),
        ("520399101", 0, 1, 0, 0, 0, 1),
    ]
    assert Household.objects.count() == 6


@pytest.mark.django_db
def test_cached_codes_follow_the_user_row_for_role_and_active(make_user, regions):
    from accounts.scoping import cached_region_codes

    user = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]])
    assert cached_region_codes(user) == ["520399100"]
    user.role, user.is_superuser = Role.ADMINISTRATOR, True
    assert cached_region_codes(user) is None
    user.role, user.is_superuser, user.is_active = Role.TOWNSHIP_OFFICIAL, False, False
    assert cached_region_codes(user) == []


@pytest.mark.django_db
def test_codes_cached_before_a_change_commits_are_not_served_after_it(
    make_user, regions, django_capture_on_commit_callbacks
):
    """A reader in another transaction may read the old rows after the change began and cache
    them: the token replaced again at commit makes that entry stale."""
    from django.core.cache import cache

    from accounts import scoping
    from accounts.models import User

    user = make_user(Role.TOWNSHIP_OFFICIAL, [regions["township1"]])
    assert scoping.cached_region_codes(User.objects.get(pk=user.pk)) == ["520399100"]
    with django_capture_on_commit_callbacks(execute=True):
        user.regions.set([regions["township2"]])
        # The other transaction's read: old codes, under the tokens current during the change.
        tokens = (
            cache.get(scoping._ALL_TOKEN),
            cache.get(scoping._USER_TOKEN.format(pk=user.pk)),
        )
        cache.set(scoping._ENTRY.format(pk=user.pk), (tokens, ("520399100",)))
        assert scoping.cached_region_codes(User.objects.get(pk=user.pk)) == ["520399100"]

    assert scoping.cached_region_codes(User.objects.get(pk=user.pk)) == ["520399101"]
