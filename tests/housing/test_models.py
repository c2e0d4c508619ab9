import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from housing.models import House, Region, RegionLevel, parent_code
from housing.services import family_member_create, house_create, household_create
from tests.factories import HouseholdFactory, make_region


def test_parent_code_follows_the_code_lengths():
    assert parent_code("520329102201") == "520329102"
    assert parent_code("520329102") == "520329"
    assert parent_code("520329") == "5203"
    assert parent_code("5203") == "52"
    assert parent_code("52") is None


@pytest.mark.django_db
def test_region_code_length_must_fit_its_level():
    region = Region(code="52039", name="x", level=RegionLevel.COUNTY)
    with pytest.raises(ValidationError) as exc:
        region.full_clean()
    assert exc.value.message_dict["code"] == ["A County code has 6 digits; 52039 has 5."]


@pytest.mark.django_db
def test_region_code_must_start_with_its_parents_code():
    county = make_region("520399")
    township = Region(code="520398100", name="x", level=RegionLevel.TOWNSHIP, parent=county)
    with pytest.raises(ValidationError) as exc:
        township.full_clean()
    assert exc.value.message_dict["parent"] == [
        "The code 520398100 does not start with its parent's code 520399."
    ]


@pytest.mark.django_db
def test_region_parent_must_be_the_level_directly_above():
    county = make_region("520399")
    village = Region(code="520399100200", name="x", level=RegionLevel.VILLAGE, parent=county)
    with pytest.raises(ValidationError) as exc:
        village.full_clean()
    assert exc.value.message_dict["parent"] == ["A Village's parent must be a Township."]


@pytest.mark.django_db
def test_region_code_has_digits_only():
    region = Region(code="52A3", name="x", level=RegionLevel.CITY)
    with pytest.raises(ValidationError) as exc:
        region.full_clean()
    assert exc.value.message_dict["code"] == ["A region code has digits only."]


@pytest.mark.django_db
def test_household_must_belong_to_a_village(regions):
    with pytest.raises(ValidationError) as exc:
        household_create(archive_no="X1", village=regions["township1"], head_name="张三")
    assert "village" in exc.value.message_dict


@pytest.mark.django_db
def test_household_with_invalid_id_number_names_the_field(regions):
    with pytest.raises(ValidationError) as exc:
        household_create(
            archive_no="X1",
            village=regions["village1"],
            head_name="张三",
            head_id_number="110105194912310021",
        )
    assert exc.value.message_dict["head_id_number"] == [
        "The check character of the ID number is wrong (expected X)."
    ]


@pytest.mark.django_db
def test_family_member_sex_and_birth_date_come_from_the_id_number():
    member = family_member_create(
        household=HouseholdFactory(), name="李四", relation="spouse", id_number="11010519491231002x"
    )
    assert (member.id_number, member.sex, str(member.birth_date)) == (
        "11010519491231002X",
        "F",
        "1949-12-31",
    )


@pytest.mark.django_db
def test_a_new_current_house_keeps_the_old_one_as_replaced():
    household = HouseholdFactory()
    old = house_create(household=household, structure_type="earth_wood", safety_grade="D")
    new = house_create(household=household, structure_type="masonry", safety_grade="A")
    old.refresh_from_db()
    assert (old.is_current, new.is_current) == (False, True)
    assert household.houses.count() == 2


@pytest.mark.django_db
def test_the_database_refuses_two_current_houses():
    household = HouseholdFactory()
    House.objects.create(household=household, is_current=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        House.objects.create(household=household, is_current=True)
