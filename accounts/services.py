"""Every write to users goes through here."""

from collections.abc import Iterable

from django.contrib.auth import password_validation
from django.db import transaction

from accounts.models import Role, User


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    regions: Iterable = (),
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a user with a role and the regions it may see.

    Administrators get is_staff and is_superuser: the Django admin is theirs, and theirs alone.
    Raises ValidationError (and writes nothing) on an unknown role, a taken username or a
    password the configured validators reject.
    """
    is_administrator = role == Role.ADMINISTRATOR
    user = User(
        username=username,
        role=role,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=is_administrator,
        is_superuser=is_administrator,
    )
    # Checked against the unsaved user so the similarity validator can compare with the name.
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    regions = list(regions)
    if regions:
        user.regions.set(regions)
    return user
