"""Domain errors of the renovation-case services.

Each carries the HTTP ``status`` the API and the pages answer with (api.exceptions maps
them): ``CaseRefused`` → 400, ``CaseForbidden`` → 403, ``CaseStateConflict`` → 409, and a
translated ``message`` that a person can act on. A repeated request key used for another
case, step or house, or by another user, is ``inspections.errors.IdempotencyConflict`` (409).
"""

from django.utils.translation import gettext_lazy as _

from inspections.errors import InspectionError


class CaseError(InspectionError):
    """Base class of a refused renovation-case step; nothing was changed."""

    status = 400
    default_message = _("The case could not be changed.")


class CaseRefused(CaseError):
    """The step is not possible yet or the input is wrong (evidence missing, notice period
    not over, area over the rule, payment above the subsidy...): 400."""

    status = 400


class CaseForbidden(CaseError):
    """The user's role may not take this step, or separation of duties keeps this user from
    it (renovation.workflow.duty_problem): 403."""

    status = 403
    default_message = _("Your role may not take this step.")


class CaseStateConflict(CaseError):
    """The case is not (or no longer) in a state this step starts from, e.g. another official
    approved it a moment ago: 409."""

    status = 409
    default_message = _("The case has changed; reload it and try again.")
