"""Who may do what with inspections and photos."""

from accounts.models import Role
from accounts.permissions import can_view_household

# Roles that visit houses and record what they find. Auditors only read.
FIELD_ROLES = {Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMINISTRATOR}


def can_use_field_page(user) -> bool:
    """Field roles record inspections; auditors (and anyone else) only read."""
    return user.is_authenticated and (user.role in FIELD_ROLES or user.is_administrator)


def can_create_inspection(user, house) -> bool:
    return (
        user.is_authenticated
        and (user.role in FIELD_ROLES or user.is_administrator)
        and can_view_household(user, house.household)
    )


def can_view_inspection(user, inspection) -> bool:
    return can_view_household(user, inspection.house.household)


def can_upload_photo(user, inspection) -> bool:
    """Only the inspector who made the visit adds its photos."""
    return user.is_authenticated and inspection.inspector_id == user.pk


def can_view_photo(user, photo) -> bool:
    """The display copy and thumbnail: anyone who sees the household."""
    return can_view_inspection(user, photo.inspection)


def can_view_photo_original(user, photo) -> bool:
    """The original file keeps its EXIF and GPS: administrators only."""
    return user.is_authenticated and user.is_administrator and can_view_photo(user, photo)


# Who may open a renovation case: those who visit houses and take applications.
CASE_OPEN_ROLES = {Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL}


def can_open_case(user, house) -> bool:
    return (
        user.is_authenticated
        and (user.role in CASE_OPEN_ROLES or user.is_administrator)
        and can_view_household(user, house.household)
    )


def can_view_case(user, case) -> bool:
    return can_view_household(user, case.house.household)


def can_act_on_case(user, case, action: str) -> bool:
    """May this user's role take `action` on a case in their regions? (State and evidence
    are the services' concern: see inspections.cases.services.ACTIONS.)"""
    from inspections.cases.services import ACTIONS

    spec = ACTIONS.get(action)
    return (
        spec is not None
        and user.is_authenticated
        and (user.role in spec.roles or user.is_administrator)
        and can_view_case(user, case)
    )


def can_record_payment(user, case) -> bool:
    return can_act_on_case(user, case, "pay")


# Who reads the auditor's worklist of anomalies (templates/base.html repeats this check).
WORKLIST_ROLES = {Role.AUDITOR, Role.COUNTY_OFFICIAL, Role.ADMINISTRATOR}


def can_view_worklist(user) -> bool:
    """Auditors, county officials and administrators; not townships or inspectors."""
    return user.is_authenticated and (user.role in WORKLIST_ROLES or user.is_administrator)
