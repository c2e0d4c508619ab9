import pytest

from housing.models import Household
from tests.factories import HouseholdFactory


@pytest.mark.django_db
def test_household_factory_makes_a_valid_household_with_its_village_tree():
    household = HouseholdFactory()
    household.full_clean()
    assert Household.objects.get().village.parent.parent.code == "520399"
