"""Domain errors raised by the inspection and photo services (and the base of the case
services' errors, renovation.errors).

Each carries a translated ``message`` that a person can act on, the HTTP ``status`` it
means and the ``response_body`` an API answers with (api.exceptions answers for every
view): ``IdempotencyConflict`` → 409, ``InspectionRefused`` → 403, ``InspectionInvalid``
→ 400 naming each bad field.
"""

from django.utils.translation import gettext_lazy as _


class InspectionError(Exception):
    """Base class: a translated ``message`` saying what is wrong."""

    status = 400
    default_message = _("The request could not be carried out.")

    def __init__(self, message=None):
        self.message = message if message is not None else self.default_message
        super().__init__(str(self.message))

    def response_body(self) -> dict:
        return {"detail": str(self.message)}


class IdempotencyConflict(InspectionError):
    """The client UUID was already used for a record with different content."""

    status = 409
    default_message = _(
        "This client UUID was already used for a different record; "
        "generate a new UUID for new content."
    )


class InspectionRefused(InspectionError):
    """The user may not make this inspection (role or state)."""

    status = 403
    default_message = _("You are not allowed to record this inspection.")


class InspectionInvalid(InspectionError):
    """The submitted record is invalid; nothing was stored.

    ``errors`` maps each bad field to a list of messages; the appraisal's fields are nested
    under "appraisal" (``{"appraisal": {"override_reason": ["..."]}}``), as the API answers.
    """

    default_message = _("The inspection is invalid; nothing was stored.")

    def __init__(self, errors: dict, message=None):
        self.errors = errors
        super().__init__(message)

    def response_body(self) -> dict:
        return {
            field: messages if isinstance(messages, dict) else [str(m) for m in messages]
            for field, messages in self.errors.items()
        }
