"""A household with known ID numbers, for the pages that mask and reveal them."""

from housing.models import SafetyGrade
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory

HEAD_ID = "520399195803141230"
HEAD_ID_MASKED = "520399***********0"
MEMBER_ID = "52039919850702042X"
MEMBER_ID_MASKED = "520399***********X"


def make_known(regions):
    """A household in village 1 with known ID numbers, a current house and one member."""
    household = HouseholdFactory(
        village=regions["village1"],
        archive_no="520399100200-0007",
        head_name="王德福",
        head_id_number=HEAD_ID,
    )
    HouseFactory(household=household, safety_grade=SafetyGrade.D)
    FamilyMemberFactory(household=household, name="王小红", id_number=MEMBER_ID)
    return household
