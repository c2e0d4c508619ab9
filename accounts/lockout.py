"""Lockout after repeated failed logins (django-axes), on every login path.

/login/, /admin/login/ and /api/auth/token/ all call django.contrib.auth.authenticate() with
the request, so axes counts their failures alike (AccessAttempt rows in the database, which
every app server shares). Two counters, each with its own limit:

- per account (ANJU_LOGIN_FAILURE_LIMIT): guessing one person's password from many addresses;
- per address (ANJU_LOGIN_IP_FAILURE_LIMIT): trying many accounts from one address. Higher,
  because a township office or a mobile carrier puts many honest users behind one address.

Axes compares a single number with a single limit, so the per-address count is scaled onto
the per-account limit: floor(count × account_limit / address_limit) reaches account_limit
exactly when count reaches address_limit.
"""

import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

LOCKOUT_TEMPLATE = "registration/locked_out.html"


def failure_limit(request=None, credentials=None) -> int:
    """AXES_FAILURE_LIMIT: read from our setting on each login, so one setting rules."""
    return settings.ANJU_LOGIN_FAILURE_LIMIT


def cool_off(request=None) -> datetime.timedelta:
    """AXES_COOLOFF_TIME: likewise."""
    return datetime.timedelta(minutes=settings.ANJU_LOGIN_COOLOFF_MINUTES)


def _scaled(parameter, failures: int) -> int:
    account_limit = settings.ANJU_LOGIN_FAILURE_LIMIT
    if parameter == "ip_address" or parameter == ["ip_address"]:
        return failures * account_limit // settings.ANJU_LOGIN_IP_FAILURE_LIMIT
    return failures


class LoginAttemptHandler(AxesDatabaseHandler):
    """axes' database handler, with a limit of its own for the per-address counter."""

    def get_failures(self, request, credentials=None) -> int:
        parameters = get_lockout_parameters(request, credentials)
        attempts_list = self.get_user_attempts(request, credentials)
        return max(
            (
                _scaled(
                    parameter,
                    attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0,
                )
                for parameter, attempts in zip(parameters, attempts_list, strict=True)
            ),
            default=0,
        )


def lockout_seconds(request=None) -> int:
    """How long a lockout lasts after the last failure (AXES_COOLOFF_TIME)."""
    return int(get_cool_off(request).total_seconds())


def lockout_message(request=None) -> str:
    minutes = -(-lockout_seconds(request) // 60)  # rounded up
    return ngettext(
        "Too many failed logins for this account or from this address. "
        "Logging in is blocked for %(minutes)d minute; try again after that, "
        "or ask an administrator to unlock it.",
        "Too many failed logins for this account or from this address. "
        "Logging in is blocked for %(minutes)d minutes; try again after that, "
        "or ask an administrator to unlock it.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out login gets (AXES_LOCKOUT_CALLABLE): 429, a page or JSON."""
    message = lockout_message(request)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(
            request, LOCKOUT_TEMPLATE, {"message": message, "title": _("Login blocked")}, status=429
        )
    response["Retry-After"] = str(lockout_seconds(request))
    return response
