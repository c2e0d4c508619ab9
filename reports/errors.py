"""Errors an export can end with that a person can act on (shown on /exports/)."""


class ExportError(Exception):
    """The export cannot be made as asked; the message says what and where."""


class ExportForbidden(ExportError):
    """The user may not make this export (role, or a region or household out of scope)."""
