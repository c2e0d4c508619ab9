"""Domain errors raised by inspection, photo and renovation-case services.

Views map them to HTTP answers: ``IdempotencyConflict`` → 409,
``InspectionRefused`` → 403; for cases ``CaseRefused`` → 400, ``CaseForbidden`` → 403,
``CaseStateConflict`` → 409 (each case error carries its ``status``). Each carries a
translated ``message`` that a person can act on.
"""

from django.utils.translation import gettext_lazy as _


class InspectionError(Exception):
    """Base class: a translated ``message`` saying what is wrong."""

    default_message = _("The request could not be carried out.")

    def __init__(self, message=None):
        self.message = message if message is not None else self.default_message
        super().__init__(str(self.message))


class IdempotencyConflict(InspectionError):
    """The client UUID was already used for a record with different content."""

    default_message = _(
        "This client UUID was already used for a different record; "
        "generate a new UUID for new content."
    )


class InspectionRefused(InspectionError):
    """The user may not make this inspection (role or state)."""

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


class CaseError(InspectionError):
    """Base class of a refused renovation-case step; nothing was changed."""

    status = 400
    default_message = _("The case could not be changed.")


class CaseRefused(CaseError):
    """The step is not possible yet or the input is wrong (evidence missing, notice period
    not over, area over the rule, payment above the subsidy...): 400."""

    status = 400


class CaseForbidden(CaseError):
    """The user's role may not take this step: 403."""

    status = 403
    default_message = _("Your role may not take this step.")


class CaseStateConflict(CaseError):
    """The case is not (or no longer) in a state this step starts from, e.g. another official
    approved it a moment ago: 409."""

    status = 409
    default_message = _("The case has changed; reload it and try again.")
