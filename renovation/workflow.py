"""The renovation workflow as one table: every step a case can take, and what it needs.

Each Step says where it may start (from-states), where it leads (to-state; None for a
payment, which stays until the subsidy is paid in full), who may take it (administrators
may take them all; auditors none), whether a typed reason or a picked completion check
goes with it (every step also takes the official's review opinion and their explicit
confirmation, see step_problem), whether an official may take it on several cases at
once (batchable), whether it ends or undoes the case (closing: offered to those who may
take it, never "waited for"), and the evidence check it must pass. The services
(renovation/services.py), the pages, the API, the permissions and the tests all read this
table; none repeats it.

==================  =========================================  ==========================
step                from                                       roles
==================  =========================================  ==========================
open (case_open)    –  (house graded C or D, no open case)     inspector, township
village_review      applied                                    inspector, township
notice              village_reviewed                           township
township_check      noticed (notice period over)               township
county_approve      township_checked                           county
start_works         county_approved (before-photos)            inspector, township
finish_works        works_started (after-photos)               inspector, township
pass_completion     works_finished (completion appraisal A/B   township, county
                    by another inspector than the works')
fail_completion     works_finished (reason = required fixes)   township, county
                    → back to works_started
reject              applied … township_checked (a reason)      township, county
withdraw            any open state without payments (reason)   township, county
pay (case_pay)      completion_passed; → paid when in full     county
==================  =========================================  ==========================

The official who passes the completion check must not be the inspector who supervised the
works either (DOMAIN.md: the check is made by someone else).

Separation of duties (ANJU_SEPARATION_OF_DUTIES, on by default): each Step's `not_by` names
the earlier parts of the same case whose person may not take it, so that no one official
appraises the finished house, passes the check and pays the subsidy alone:

==================  =========================================================
step                not by the person who ...
==================  =========================================================
county_approve      opened the case (applied for the household)
pass_completion     made the completion appraisal the check is judged on
pay                 passed the completion check
==================  =========================================================

Two people are enough for appraisal, pass and payment (one appraises and pays, the other
passes); administrators, who hold every role, are held to it too. Off, these steps go back
to the role checks alone.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Role
from accounts.permissions import has_role
from housing.models import RenovationStatus
from inspections.models import InspectionKind
from renovation.errors import CaseForbidden, CaseRefused, CaseStateConflict
from renovation.evidence import completion_visit, photo_slots, slot_names
from renovation.models import OPEN_STATES, CaseEventKind, CaseState, RenovationCase
from renovation.rules import number

INSPECTOR = Role.INSPECTOR
TOWNSHIP = Role.TOWNSHIP_OFFICIAL
COUNTY = Role.COUNTY_OFFICIAL

# A check takes (case, user, inspection, at: the step's time) and answers why the step may
# not be taken, or None.
Check = Callable[[RenovationCase, object, object, datetime.datetime], str | None]


@dataclass(frozen=True)
class Step:
    name: str
    label: Promise
    from_states: tuple[str, ...]
    to_state: str | None  # None: a payment, which stays until the subsidy is paid in full
    roles: frozenset[str]
    check: Check | None = None
    needs_reason: bool = False
    reason_missing: Promise | None = None  # None: "Write the reason."
    needs_inspection: bool = False
    batchable: bool = False
    closing: bool = False
    not_by: tuple[str, ...] = ()  # earlier parts (PARTS) whose person may not take this step


# ---------------------------------------------------------------------------------------
# Evidence checks


def local_date(value: datetime.datetime) -> str:
    return timezone.localtime(value).date().isoformat()


def local_time(value: datetime.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def _check_before_photos(case, user, inspection, at):
    _present, missing = photo_slots(case, InspectionKind.APPRAISAL, "before")
    if missing:
        return _("Before-photos are missing for: %(slots)s.") % {"slots": slot_names(missing)}
    return None


def _check_after_photos(case, user, inspection, at):
    _present, missing = photo_slots(case, InspectionKind.COMPLETION, "after")
    if missing:
        return _("After-photos are missing for: %(slots)s.") % {"slots": slot_names(missing)}
    return None


def _check_notice_period(case, user, inspection, at):
    if case.notice_started_at is None:
        return _("The public notice has no start date; notice the case again.")
    days = settings.ANJU_NOTICE_DAYS
    ends = case.notice_started_at + datetime.timedelta(days=days)
    if at < ends:
        return _(
            "The public notice started on %(start)s and must stand %(days)d days: the "
            "township may check it from %(end)s."
        ) % {"start": local_date(case.notice_started_at), "days": days, "end": local_date(ends)}
    return None


def _visit_problem(case, inspection) -> str | None:
    """Why a completion visit sent explicitly cannot judge this case (None: it can)."""
    if inspection is not None and (
        inspection.house_id != case.house_id or inspection.kind != InspectionKind.COMPLETION
    ):
        return _("Inspection %(id)s is not a completion check of this case's house.") % {
            "id": inspection.pk
        }
    if inspection is not None:
        # The default visit is always one made after the entry appraisal
        # (renovation.evidence.completion_visits); a visit sent explicitly must be too: one
        # made before it (an earlier renovation's, say) saw the house before this case's
        # works, and the page no longer offers it (renovation.selectors.completion_choices).
        entry = case.entry_appraisal.inspection
        if inspection.started_at <= entry.started_at:
            return _(
                "The completion visit of %(visit)s by %(inspector)s was made before this "
                "case's entry appraisal (%(entry)s), so it cannot check this case's works "
                "(it may be from an earlier renovation); choose a completion visit made after "
                "the entry appraisal."
            ) % {
                "visit": local_time(inspection.started_at),
                "inspector": inspection.inspector.get_username(),
                "entry": local_time(entry.started_at),
            }
    return None


def _check_completion(case, user, inspection, at):
    problem = _visit_problem(case, inspection)
    if problem:
        return problem
    visit = completion_visit(case, inspection)
    appraisal = getattr(visit, "appraisal", None) if visit is not None else None
    if visit is None or appraisal is None:
        return _(
            "No completion check with an appraisal has been recorded for this house since "
            "the works; an inspector other than the works' inspector must make one."
        )
    if visit.started_at > at:
        return _(
            "The completion visit of %(visit)s is later than this step (%(at)s): a check "
            "cannot pass before its visit."
        ) % {"visit": local_time(visit.started_at), "at": local_time(at)}
    if appraisal.grade not in ("A", "B"):
        return _(
            "The completion appraisal of %(date)s grades the house %(grade)s; it must be A "
            "or B to pass (fail the check with the fixes required instead)."
        ) % {"date": local_date(visit.started_at), "grade": appraisal.grade}
    if case.works_inspector_id is not None and visit.inspector_id == case.works_inspector_id:
        return _(
            "The completion appraisal was made by the inspector who supervised the works "
            "(%(name)s); another inspector must make it."
        ) % {"name": visit.inspector.get_username()}
    if case.works_inspector_id is not None and user.pk == case.works_inspector_id:
        return _(
            "You supervised the works (%(name)s); another official must pass the completion check."
        ) % {"name": user.get_username()}
    return None


def _check_failed_completion(case, user, inspection, at):
    # A failed check names its visit too: the same visits as a passed one may be named.
    return _visit_problem(case, inspection)


def _check_no_payments(case, user, inspection, at):
    if case.paid_total > 0:
        return _(
            "%(paid)s yuan has already been paid on this case; a case with payments cannot "
            "be withdrawn."
        ) % {"paid": number(case.paid_total)}
    return None


# ---------------------------------------------------------------------------------------
# Separation of duties: who played an earlier part of the case


@dataclass(frozen=True)
class Part:
    """An earlier part of a case: who played it (a user id or None), and the refusal said
    to that person when they try a step their part excludes."""

    who: Callable[[RenovationCase, object], int | None]  # (case, inspection) -> user id
    refusal: Promise


def _opener(case, inspection):
    return case.created_by_id


def _completion_appraiser(case, inspection):
    visit = completion_visit(case, inspection)
    return visit.inspector_id if visit is not None else None


def _completion_passer(case, inspection):
    # The event of the pass the case stands on: a failed check leads elsewhere (works).
    return (
        case.events.filter(kind=CaseEventKind.TRANSITION, to_state=CaseState.COMPLETION_PASSED)
        .order_by("-id")
        .values_list("actor_id", flat=True)
        .first()
    )


PARTS: dict[str, Part] = {
    "open": Part(
        _opener,
        gettext_lazy(
            "Separation of duties: you (%(name)s, %(role)s) opened this case; someone else "
            "must take the step “%(action)s”."
        ),
    ),
    "completion_appraisal": Part(
        _completion_appraiser,
        gettext_lazy(
            "Separation of duties: you (%(name)s, %(role)s) made the completion appraisal "
            "this check is judged on; someone else must take the step “%(action)s”."
        ),
    ),
    "pass_completion": Part(
        _completion_passer,
        gettext_lazy(
            "Separation of duties: you (%(name)s, %(role)s) passed the completion check of "
            "this case; someone else must take the step “%(action)s”."
        ),
    ),
}


def duty_problem(*, user, case: RenovationCase, step: Step, inspection=None):
    """The CaseForbidden a step meets because the user played an excluded earlier part of
    the case (step.not_by), or None; always None with ANJU_SEPARATION_OF_DUTIES off."""
    if not settings.ANJU_SEPARATION_OF_DUTIES:
        return None
    for name in step.not_by:
        part = PARTS[name]
        if part.who(case, inspection) == user.pk:
            return CaseForbidden(
                part.refusal
                % {"name": user.get_username(), "role": role_label(user), "action": step.label}
            )
    return None


# ---------------------------------------------------------------------------------------
# The table

BEFORE_APPROVAL = (
    CaseState.APPLIED,
    CaseState.VILLAGE_REVIEWED,
    CaseState.NOTICED,
    CaseState.TOWNSHIP_CHECKED,
)

STEPS: dict[str, Step] = {
    step.name: step
    for step in [
        Step(
            "village_review",
            gettext_lazy("Village review"),
            (CaseState.APPLIED,),
            CaseState.VILLAGE_REVIEWED,
            frozenset({INSPECTOR, TOWNSHIP}),
            batchable=True,
        ),
        Step(
            "notice",
            gettext_lazy("Start the public notice"),
            (CaseState.VILLAGE_REVIEWED,),
            CaseState.NOTICED,
            frozenset({TOWNSHIP}),
            batchable=True,
        ),
        Step(
            "township_check",
            gettext_lazy("Township check"),
            (CaseState.NOTICED,),
            CaseState.TOWNSHIP_CHECKED,
            frozenset({TOWNSHIP}),
            _check_notice_period,
            batchable=True,
        ),
        Step(
            "county_approve",
            gettext_lazy("County approval"),
            (CaseState.TOWNSHIP_CHECKED,),
            CaseState.COUNTY_APPROVED,
            frozenset({COUNTY}),
            batchable=True,
            not_by=("open",),
        ),
        Step(
            "start_works",
            gettext_lazy("Start the works"),
            (CaseState.COUNTY_APPROVED,),
            CaseState.WORKS_STARTED,
            frozenset({INSPECTOR, TOWNSHIP}),
            _check_before_photos,
        ),
        Step(
            "finish_works",
            gettext_lazy("Finish the works"),
            (CaseState.WORKS_STARTED,),
            CaseState.WORKS_FINISHED,
            frozenset({INSPECTOR, TOWNSHIP}),
            _check_after_photos,
        ),
        Step(
            "pass_completion",
            gettext_lazy("Pass the completion check"),
            (CaseState.WORKS_FINISHED,),
            CaseState.COMPLETION_PASSED,
            frozenset({TOWNSHIP, COUNTY}),
            _check_completion,
            needs_inspection=True,
            not_by=("completion_appraisal",),
        ),
        Step(
            "fail_completion",
            gettext_lazy("Fail the completion check"),
            (CaseState.WORKS_FINISHED,),
            CaseState.WORKS_STARTED,
            frozenset({TOWNSHIP, COUNTY}),
            _check_failed_completion,
            needs_reason=True,
            reason_missing=gettext_lazy("Write the fixes required before the check can pass."),
            needs_inspection=True,
            closing=True,
        ),
        Step(
            "reject",
            gettext_lazy("Reject"),
            BEFORE_APPROVAL,
            CaseState.REJECTED,
            frozenset({TOWNSHIP, COUNTY}),
            needs_reason=True,
            closing=True,
        ),
        Step(
            "withdraw",
            gettext_lazy("Withdraw"),
            tuple(OPEN_STATES),
            CaseState.WITHDRAWN,
            frozenset({TOWNSHIP, COUNTY}),
            _check_no_payments,
            needs_reason=True,
            closing=True,
        ),
        Step(
            "pay",
            gettext_lazy("Record a payment"),
            (CaseState.COMPLETION_PASSED,),
            None,
            frozenset({COUNTY}),
            not_by=("pass_completion",),
        ),
    ]
}

# Who may open a case: those who visit houses and take applications.
OPEN_ROLES = frozenset({INSPECTOR, TOWNSHIP})

# The house's renovation status follows its case.
HOUSE_STATUS = {
    CaseState.APPLIED: RenovationStatus.PLANNED,
    CaseState.WORKS_STARTED: RenovationStatus.IN_PROGRESS,
    CaseState.COMPLETION_PASSED: RenovationStatus.COMPLETED,
    CaseState.REJECTED: RenovationStatus.NONE,
    CaseState.WITHDRAWN: RenovationStatus.NONE,
}


def role_may(user, step: Step) -> bool:
    """May the user's role ever take this step? (Region, state and evidence aside.)"""
    return has_role(user, *step.roles)


def batch_steps_for(user) -> list[Step]:
    """The steps this user's role may take on several cases at once."""
    return [s for s in STEPS.values() if s.batchable and role_may(user, s)]


def role_label(user) -> str:
    return str(Role(user.role).label) if user.role in Role.values else user.role


def forbidden(user, step: Step) -> CaseForbidden:
    return CaseForbidden(
        _("Your role (%(role)s) may not take the step “%(action)s”.")
        % {"role": role_label(user), "action": step.label}
    )


def state_label(state: str) -> str:
    return str(CaseState(state).label)


def wrong_state(case: RenovationCase, step: Step) -> CaseStateConflict:
    return CaseStateConflict(
        _("Case %(id)s is %(state)s; “%(action)s” is possible only from: %(states)s.")
        % {
            "id": case.pk,
            "state": state_label(case.state),
            "action": step.label,
            "states": ", ".join(state_label(s) for s in step.from_states),
        }
    )


def opinion_missing(step: Step) -> CaseRefused:
    return CaseRefused(
        _("Write your review opinion on the step “%(action)s”: it is recorded with the step.")
        % {"action": step.label}
    )


def confirmation_missing(step: Step) -> CaseRefused:
    return CaseRefused(
        _("Tick “I confirm” to take the step “%(action)s”: it is recorded in your name.")
        % {"action": step.label}
    )


def step_problem(
    *,
    user,
    case: RenovationCase,
    step: Step,
    reason="",
    inspection=None,
    opinion: str | None = None,
    confirm: bool | None = None,
    at: datetime.datetime | None = None,
):
    """The error the step would meet at `at` (default now), or None: role, then state,
    then reason, then the review opinion and the confirmation (None: asked on the form,
    not judged here), then the step's evidence check, then separation of duties (judged on
    the evidence the check accepted)."""
    if not role_may(user, step):
        return forbidden(user, step)
    if case.state not in step.from_states:
        return wrong_state(case, step)
    if step.needs_reason and not (reason or "").strip():
        return CaseRefused(step.reason_missing or _("Write the reason."))
    if opinion is not None and not opinion.strip():
        return opinion_missing(step)
    if confirm is not None and confirm is not True:
        return confirmation_missing(step)
    if step.check is not None:
        message = step.check(case, user, inspection, at or timezone.now())
        if message:
            return CaseRefused(message)
    return duty_problem(user=user, case=case, step=step, inspection=inspection)
