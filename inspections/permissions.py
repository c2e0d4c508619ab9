"""Who may do what with inspections and photos."""

from accounts.models import Role
from accounts.permissions import can_view_household, has_role

# Roles that visit houses and record what they find. Auditors only read.
FIELD_ROLES = (Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL)


def can_use_field_page(user) -> bool:
    """Field roles record inspections; auditors (and anyone else) only read."""
    return has_role(user, *FIELD_ROLES)


def can_create_inspection(user, house) -> bool:
    return has_role(user, *FIELD_ROLES) and can_view_household(user, house.household)


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
