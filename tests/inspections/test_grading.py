"""The appraisal grade rule: every branch, the default rule, a custom rule from the database."""

import pytest

from inspections.grading import DEFAULT, active_rule, derive_grade
from inspections.models import AppraisalRule
from tests.inspections.factories import SOUND_MEMBERS as SOUND


def ratings(**changes):
    return {**SOUND, **changes}


@pytest.mark.parametrize(
    ("member_ratings", "hazards", "grade"),
    [
        (ratings(), [], "A"),
        (ratings(columns_beams="not_present"), [], "A"),
        (ratings(envelope="damaged"), [], "B"),
        (ratings(foundation="damaged", roof_structure="damaged"), [], "B"),
        (ratings(roof_structure="dangerous"), [], "C"),
        (ratings(floors_slabs="dangerous", envelope="damaged"), [], "C"),
        (ratings(envelope="dangerous"), [], "C"),
        (ratings(foundation="dangerous"), [], "D"),
        (ratings(load_bearing_walls="dangerous"), [], "D"),
        (ratings(columns_beams="dangerous", roof_structure="dangerous"), [], "D"),
        (ratings(), ["landslide"], "D"),
        (ratings(envelope="damaged"), ["flood", "rockfall"], "D"),
        (ratings(**dict.fromkeys(SOUND, "not_present")), [], "A"),
    ],
)
def test_default_rule_grades_each_case(member_ratings, hazards, grade):
    assert derive_grade(ratings=member_ratings, site_hazards=hazards, rule=DEFAULT) == grade


def test_default_rule_is_that_of_migration_0002():
    assert DEFAULT.name == "default-2026"
    assert DEFAULT.d_members == ("foundation", "load_bearing_walls", "columns_beams")
    assert DEFAULT.site_hazard_makes_d is True


@pytest.mark.django_db
def test_without_a_rule_in_the_database_the_default_applies():
    assert active_rule() == DEFAULT


@pytest.mark.django_db
def test_the_newest_active_rule_from_the_database_changes_the_outcome():
    AppraisalRule.objects.create(name="old", d_members=["foundation"], site_hazard_makes_d=True)
    AppraisalRule.objects.create(
        name="county-2027", d_members=["roof_structure"], site_hazard_makes_d=False
    )
    AppraisalRule.objects.create(
        name="inactive", d_members=[], site_hazard_makes_d=True, active=False
    )

    rule = active_rule()

    assert rule.name == "county-2027"
    # The roof is now a main member; the foundation is local danger; hazards do not count.
    assert (
        derive_grade(ratings=ratings(roof_structure="dangerous"), site_hazards=[], rule=rule) == "D"
    )
    assert derive_grade(ratings=ratings(foundation="dangerous"), site_hazards=[], rule=rule) == "C"
    assert derive_grade(ratings=ratings(), site_hazards=["flood"], rule=rule) == "A"


@pytest.mark.django_db
def test_derive_grade_takes_a_model_rule_too():
    rule = AppraisalRule.objects.create(name="walls-only", d_members=["load_bearing_walls"])

    assert derive_grade(ratings=ratings(foundation="dangerous"), site_hazards=[], rule=rule) == "C"
    assert (
        derive_grade(ratings=ratings(load_bearing_walls="dangerous"), site_hazards=[], rule=rule)
        == "D"
    )
