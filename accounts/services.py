"""Every write to users goes through here."""

from collections.abc import Iterable

from django.contrib.auth import password_validation
from django.db import transaction
from rest_framework.authtoken.models import Token

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


@transaction.atomic
def token_issue(*, user: User) -> Token:
    """A new API token for the user, replacing (revoking) any token they had.

    Asking again is how a phone renews a token before it expires; the old one stops working
    at once. The user's row is locked so that two logins at the same moment cannot both
    insert a token (a user has one).
    """
    User.objects.select_for_update().filter(pk=user.pk).first()
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


@transaction.atomic
def token_revoke(*, user: User) -> int:
    """Revoke the user's API token, if any: on logout and on a password change.

    Returns how many tokens were deleted (0 or 1).
    """
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
