"""Who may do what with exports."""

from reports.kinds import KINDS, kinds_for


def can_export(user) -> bool:
    """May the user make any export at all (the office roles and administrators)."""
    return bool(user.is_authenticated and kinds_for(user))


def can_make_export(user, kind: str) -> bool:
    spec = KINDS.get(kind)
    return bool(user.is_authenticated and spec is not None and spec.may(user))


def can_download_export(user, export) -> bool:
    """The person who asked for it; administrators too (they keep the archive)."""
    return user.is_authenticated and (user.is_administrator or export.user_id == user.pk)


def can_verify_documents(user) -> bool:
    """Any signed-in user may check a document: the QR code on a page leads here."""
    return user.is_authenticated
