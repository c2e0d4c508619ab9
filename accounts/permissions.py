"""Who may do what: plain functions used by views, templates, the API and tests."""

from accounts.models import Role
from accounts.scoping import code_visible


def has_role(user, *roles: str) -> bool:
    """Is the user signed in with one of these roles? Administrators have every role."""
    return user.is_authenticated and (user.is_administrator or user.role in roles)


def can_view_household(user, household) -> bool:
    return user.is_authenticated and code_visible(user, household.village.code)


def can_view_region(user, region) -> bool:
    return user.is_authenticated and code_visible(user, region.code)


def can_see_full_id_numbers(user) -> bool:
    """Administrators see ID numbers unmasked everywhere."""
    return user.is_authenticated and user.is_administrator


def can_reveal_id_numbers(user, household) -> bool:
    """County officials may ask to reveal one household's ID numbers; each reveal is logged."""
    return (
        user.is_authenticated
        and user.role == Role.COUNTY_OFFICIAL
        and can_view_household(user, household)
    )  # not has_role: administrators see full numbers without a reveal


def can_use_admin(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_administrator
