"""Who may do what with renovation cases. The roles come from the workflow's table."""

from accounts.permissions import can_view_household, has_role
from renovation.workflow import OPEN_ROLES, STEPS


def can_open_case(user, house) -> bool:
    return has_role(user, *OPEN_ROLES) and can_view_household(user, house.household)


def can_view_case(user, case) -> bool:
    return can_view_household(user, case.house.household)


def can_act_on_case(user, case, action: str) -> bool:
    """May this user's role take `action` on a case in their regions? (State and evidence
    are the services' concern: see renovation.workflow.STEPS.)"""
    step = STEPS.get(action)
    return step is not None and has_role(user, *step.roles) and can_view_case(user, case)


def can_record_payment(user, case) -> bool:
    return can_act_on_case(user, case, "pay")
