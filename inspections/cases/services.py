"""Every write of a renovation case: opening it, each step of the chain, each payment.

Public money is released by these steps, so each one, in one transaction:
1. finds the case in the user's regions (404 otherwise) and locks its row
   (select_for_update), so two officials acting at once take turns;
2. checks the user's role (CaseForbidden, 403), the case's state (CaseStateConflict,
   409: e.g. another official approved it a moment ago) and the step's evidence and
   input (CaseRefused, 400), each with a message that says exactly why;
3. changes the case (full_clean first) and the house's renovation status, and appends one
   event to the hash chain (inspections.audit.event_append).
A refused step raises before anything is written, so it changes nothing.

Idempotent by a client request key: the key is stored on the step's event (unique); a
repeat of the same key returns the case (or payment) as it is now and writes nothing, and
the key reused for another case or step is an IdempotencyConflict.

Who may take each step (administrators may take them all; auditors none):

==================  =========================================  ==========================
action              from                                       roles
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
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Role
from housing.models import FamilyMember, House, RenovationStatus
from inspections.audit import event_append
from inspections.cases.rules import area_problem, area_rule_for, number, subsidy_standard_for
from inspections.errors import (
    CaseForbidden,
    CaseRefused,
    CaseStateConflict,
    IdempotencyConflict,
)
from inspections.models import (
    Appraisal,
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    Inspection,
    InspectionKind,
    Payment,
    Photo,
    PhotoStatus,
    RenovationCase,
    RenovationMethod,
)
from inspections.models.cases import METHODS_FOR_GRADE, OPEN_STATES
from inspections.permissions import can_open_case, can_view_case
from inspections.selectors import Slot, required_slots

INSPECTOR = Role.INSPECTOR
TOWNSHIP = Role.TOWNSHIP_OFFICIAL
COUNTY = Role.COUNTY_OFFICIAL

BEFORE_APPROVAL = [
    CaseState.APPLIED,
    CaseState.VILLAGE_REVIEWED,
    CaseState.NOTICED,
    CaseState.TOWNSHIP_CHECKED,
]


@dataclass(frozen=True)
class Action:
    """One step of the chain: where it may start, where it leads, who may take it, and what
    must be true (a check returning why not, or None)."""

    name: str
    label: object
    from_states: tuple
    to_state: str | None  # None: stays (a payment) or depends
    roles: frozenset
    check: Callable | None = None
    needs_reason: bool = False


# ---------------------------------------------------------------------------------------
# Evidence


def _slot_names(slots) -> str:
    return ", ".join(str(slot.angle_label) for slot in slots)


def _photo_slots(case: RenovationCase, kind: str, stage: str) -> tuple[list[Slot], list[Slot]]:
    """(present, missing) of the required `kind` slots of `stage`, from any usable photo of
    the case's house with that stage and angle."""
    required = [Slot(*s) for s in required_slots().get(kind, []) if s[0] == stage]
    have = set(
        Photo.objects.filter(inspection__house_id=case.house_id, stage=stage)
        .exclude(status=PhotoStatus.FAILED)
        .values_list("angle", flat=True)
    )
    present = [s for s in required if s.angle in have]
    missing = [s for s in required if s.angle not in have]
    return present, missing


def _completion_inspection(case: RenovationCase, inspection=None) -> Inspection | None:
    """The completion-check visit the case is judged on: the one given, else the house's
    latest completion visit with an appraisal made after the entry appraisal."""
    if inspection is not None:
        return inspection
    return (
        Inspection.objects.filter(
            house_id=case.house_id,
            kind=InspectionKind.COMPLETION,
            appraisal__isnull=False,
            started_at__gt=case.entry_appraisal.inspection.started_at,
        )
        .select_related("appraisal", "inspector")
        .order_by("-started_at", "-id")
        .first()
    )


def _user_name(user) -> str:
    return user.get_username()


def case_evidence(*, case: RenovationCase, inspection=None) -> dict:
    """The evidence checklist of a case.

    {"before": {"present": [Slot], "missing": [Slot]},     # appraisal kind, before stage
     "after": {"present": [Slot], "missing": [Slot]},      # completion kind, after stage
     "completion": {"inspection": Inspection | None, "grade": "A" | ... | None,
                    "inspector": User | None, "works_inspector": User | None,
                    "different_person": bool | None, "acceptable": bool}}
    "different_person" is None while no one supervises the works yet.
    """
    before_present, before_missing = _photo_slots(case, InspectionKind.APPRAISAL, "before")
    after_present, after_missing = _photo_slots(case, InspectionKind.COMPLETION, "after")
    visit = _completion_inspection(case, inspection)
    appraisal = getattr(visit, "appraisal", None) if visit is not None else None
    grade = appraisal.grade if appraisal is not None else None
    different = None
    if visit is not None and case.works_inspector_id is not None:
        different = visit.inspector_id != case.works_inspector_id
    return {
        "before": {"present": before_present, "missing": before_missing},
        "after": {"present": after_present, "missing": after_missing},
        "completion": {
            "inspection": visit,
            "grade": grade,
            "inspector": visit.inspector if visit is not None else None,
            "works_inspector": case.works_inspector,
            "different_person": different,
            "acceptable": grade in ("A", "B") and different is not False,
        },
    }


def _check_before_photos(case, user, reason, inspection):
    _present, missing = _photo_slots(case, InspectionKind.APPRAISAL, "before")
    if missing:
        return _("Before-photos are missing for: %(slots)s.") % {"slots": _slot_names(missing)}
    return None


def _check_after_photos(case, user, reason, inspection):
    _present, missing = _photo_slots(case, InspectionKind.COMPLETION, "after")
    if missing:
        return _("After-photos are missing for: %(slots)s.") % {"slots": _slot_names(missing)}
    return None


def _local_date(value: datetime.datetime) -> str:
    return timezone.localtime(value).date().isoformat()


def _check_notice_period(case, user, reason, inspection):
    if case.notice_started_at is None:
        return _("The public notice has no start date; notice the case again.")
    days = settings.ANJU_NOTICE_DAYS
    ends = case.notice_started_at + datetime.timedelta(days=days)
    if timezone.now() < ends:
        return _(
            "The public notice started on %(start)s and must stand %(days)d days: the "
            "township may check it from %(end)s."
        ) % {"start": _local_date(case.notice_started_at), "days": days, "end": _local_date(ends)}
    return None


def _check_completion(case, user, reason, inspection):
    if inspection is not None and (
        inspection.house_id != case.house_id or inspection.kind != InspectionKind.COMPLETION
    ):
        return _("Inspection %(id)s is not a completion check of this case's house.") % {
            "id": inspection.pk
        }
    visit = _completion_inspection(case, inspection)
    appraisal = getattr(visit, "appraisal", None) if visit is not None else None
    if visit is None or appraisal is None:
        return _(
            "No completion check with an appraisal has been recorded for this house since "
            "the works; an inspector other than the works' inspector must make one."
        )
    if appraisal.grade not in ("A", "B"):
        return _(
            "The completion appraisal of %(date)s grades the house %(grade)s; it must be A "
            "or B to pass (fail the check with the fixes required instead)."
        ) % {"date": _local_date(visit.started_at), "grade": appraisal.grade}
    if case.works_inspector_id is not None and visit.inspector_id == case.works_inspector_id:
        return _(
            "The completion appraisal was made by the inspector who supervised the works "
            "(%(name)s); another inspector must make it."
        ) % {"name": _user_name(visit.inspector)}
    if case.works_inspector_id is not None and user.pk == case.works_inspector_id:
        return _(
            "You supervised the works (%(name)s); another official must pass the completion check."
        ) % {"name": _user_name(user)}
    return None


def _check_no_payments(case, user, reason, inspection):
    if case.paid_total > 0:
        return _(
            "%(paid)s yuan has already been paid on this case; a case with payments cannot "
            "be withdrawn."
        ) % {"paid": number(case.paid_total)}
    return None


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in [
        Action(
            "village_review",
            gettext_lazy("Village review"),
            (CaseState.APPLIED,),
            CaseState.VILLAGE_REVIEWED,
            frozenset({INSPECTOR, TOWNSHIP}),
        ),
        Action(
            "notice",
            gettext_lazy("Start the public notice"),
            (CaseState.VILLAGE_REVIEWED,),
            CaseState.NOTICED,
            frozenset({TOWNSHIP}),
        ),
        Action(
            "township_check",
            gettext_lazy("Township check"),
            (CaseState.NOTICED,),
            CaseState.TOWNSHIP_CHECKED,
            frozenset({TOWNSHIP}),
            _check_notice_period,
        ),
        Action(
            "county_approve",
            gettext_lazy("County approval"),
            (CaseState.TOWNSHIP_CHECKED,),
            CaseState.COUNTY_APPROVED,
            frozenset({COUNTY}),
        ),
        Action(
            "start_works",
            gettext_lazy("Start the works"),
            (CaseState.COUNTY_APPROVED,),
            CaseState.WORKS_STARTED,
            frozenset({INSPECTOR, TOWNSHIP}),
            _check_before_photos,
        ),
        Action(
            "finish_works",
            gettext_lazy("Finish the works"),
            (CaseState.WORKS_STARTED,),
            CaseState.WORKS_FINISHED,
            frozenset({INSPECTOR, TOWNSHIP}),
            _check_after_photos,
        ),
        Action(
            "pass_completion",
            gettext_lazy("Pass the completion check"),
            (CaseState.WORKS_FINISHED,),
            CaseState.COMPLETION_PASSED,
            frozenset({TOWNSHIP, COUNTY}),
            _check_completion,
        ),
        Action(
            "fail_completion",
            gettext_lazy("Fail the completion check"),
            (CaseState.WORKS_FINISHED,),
            CaseState.WORKS_STARTED,
            frozenset({TOWNSHIP, COUNTY}),
            needs_reason=True,
        ),
        Action(
            "reject",
            gettext_lazy("Reject"),
            tuple(BEFORE_APPROVAL),
            CaseState.REJECTED,
            frozenset({TOWNSHIP, COUNTY}),
            needs_reason=True,
        ),
        Action(
            "withdraw",
            gettext_lazy("Withdraw"),
            tuple(OPEN_STATES),
            CaseState.WITHDRAWN,
            frozenset({TOWNSHIP, COUNTY}),
            _check_no_payments,
            needs_reason=True,
        ),
        Action(
            "pay",
            gettext_lazy("Record a payment"),
            (CaseState.COMPLETION_PASSED,),
            None,
            frozenset({COUNTY}),
        ),
    ]
}

# The house's renovation status follows its case.
HOUSE_STATUS = {
    CaseState.WORKS_STARTED: RenovationStatus.IN_PROGRESS,
    CaseState.COMPLETION_PASSED: RenovationStatus.COMPLETED,
    CaseState.REJECTED: RenovationStatus.NONE,
    CaseState.WITHDRAWN: RenovationStatus.NONE,
}


# ---------------------------------------------------------------------------------------
# Helpers


def _role_allows(user, action: Action) -> bool:
    return user.is_authenticated and (user.role in action.roles or user.is_administrator)


def _forbidden(user, action: Action) -> CaseForbidden:
    return CaseForbidden(
        _("Your role (%(role)s) may not take the step “%(action)s”.")
        % {
            "role": Role(user.role).label if user.role in Role.values else user.role,
            "action": action.label,
        }
    )


def _state_label(state: str) -> str:
    return str(CaseState(state).label)


def _wrong_state(case: RenovationCase, action: Action) -> CaseStateConflict:
    return CaseStateConflict(
        _("Case %(id)s is %(state)s; “%(action)s” is possible only from: %(states)s.")
        % {
            "id": case.pk,
            "state": _state_label(case.state),
            "action": action.label,
            "states": ", ".join(_state_label(s) for s in action.from_states),
        }
    )


def _case_for_update(*, user, case_id) -> RenovationCase:
    """The case, row-locked; 404 when absent or outside the user's regions."""
    try:
        case = (
            RenovationCase.objects.select_for_update(of=("self",))
            .select_related("house__household__village", "entry_appraisal__inspection")
            .get(pk=int(case_id))
        )
    except (RenovationCase.DoesNotExist, TypeError, ValueError):
        raise Http404("No such case.") from None
    if not can_view_case(user, case):
        raise Http404("No such case.")
    return case


def _replay(request_key, *, case_id=None, step: str) -> CaseEvent | None:
    """The event already stored under this request key, or None. A key used for another
    case or another step is a conflict."""
    if not request_key:
        return None
    event = CaseEvent.objects.filter(request_key=request_key).first()
    if event is None:
        return None
    if (case_id is not None and event.case_id != int(case_id)) or event.data.get("step") != step:
        raise IdempotencyConflict(
            _(
                "The request key %(key)s was already used for another step or case; a new "
                "request needs a new key."
            )
            % {"key": request_key}
        )
    return event


def _check_request_key(request_key) -> str | None:
    if request_key in (None, ""):
        return None
    request_key = str(request_key)
    if len(request_key) > 64:
        raise CaseRefused(_("A request key has at most 64 characters."))
    return request_key


def _save(obj, **kwargs) -> None:
    try:
        obj.full_clean(**kwargs)
    except ValidationError as error:
        messages = [
            f"{field}: {' '.join(str(m) for m in msgs)}"
            for field, msgs in error.message_dict.items()
        ]
        raise CaseRefused("; ".join(messages)) from None
    obj.save()


def _house_status(house: House, status: str) -> None:
    # A model save, not a queryset update, so the house's history records the change.
    if house.renovation_status != status:
        house.renovation_status = status
        house.save(update_fields=["renovation_status"])


def _latest_appraisal(house: House) -> Appraisal | None:
    # The same order as the house's grade (inspections.services.house_grade_follow_latest).
    return (
        Appraisal.objects.filter(inspection__house=house)
        .select_related("inspection")
        .order_by("-inspection__started_at", "-inspection__created_at", "-id")
        .first()
    )


def _idempotent(fn):
    """Run a service in a transaction; when a concurrent repeat of the same request key
    won the race (unique violation on the event), answer with its result instead."""

    def wrapper(*args, request_key=None, **kwargs):
        request_key = _check_request_key(request_key)
        try:
            return fn(*args, request_key=request_key, **kwargs)
        except IntegrityError:
            if request_key and CaseEvent.objects.filter(request_key=request_key).exists():
                return fn(*args, request_key=request_key, **kwargs)
            raise

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


# ---------------------------------------------------------------------------------------
# Services


def _money(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise CaseRefused(
            _("%(field)s: “%(value)s” is not an amount in yuan.") % {"field": field, "value": value}
        ) from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise CaseRefused(
            _("%(field)s: an amount in yuan has at most 2 decimals, not “%(value)s”.")
            % {"field": field, "value": value}
        )
    return amount


@_idempotent
def case_open(
    *,
    user,
    house: House,
    method: str,
    build_mode: str,
    planned_floor_area,
    funding_year: int,
    batch: str = "",
    subsidy_amount=None,
    subsidy_override_reason: str = "",
    request_key: str | None = None,
) -> RenovationCase:
    """Open a case for a house graded C or D (its latest appraisal is the entry appraisal).

    The method must fit the grade; the planned floor area must be within the area rule of
    the funding year for the household's size (its family members); the subsidy is the
    year's standard for the method and the household's key group, unless `subsidy_amount`
    is given with a reason. One open case per house at a time.
    """
    replay = _replay(request_key, step="open")
    if replay is not None:
        return RenovationCase.objects.get(pk=replay.case_id)
    if not can_view_case(user, RenovationCase(house=house)):
        raise Http404("No such house.")
    if not can_open_case(user, house):
        raise CaseForbidden(
            _("Your role (%(role)s) may not open a renovation case.")
            % {"role": Role(user.role).label if user.role in Role.values else user.role}
        )
    reason = (subsidy_override_reason or "").strip()
    if method not in RenovationMethod.values:
        raise CaseRefused(
            _("“%(value)s” is not a renovation method; use one of: %(choices)s.")
            % {"value": method, "choices": ", ".join(RenovationMethod.values)}
        )
    if build_mode not in BuildMode.values:
        raise CaseRefused(
            _("“%(value)s” is not a way of building; use one of: %(choices)s.")
            % {"value": build_mode, "choices": ", ".join(BuildMode.values)}
        )
    try:
        funding_year = int(funding_year)
    except (TypeError, ValueError):
        raise CaseRefused(_("The funding year must be a year, e.g. 2026.")) from None
    if not 2000 <= funding_year <= 2100:
        raise CaseRefused(
            _("The funding year %(year)s is not between 2000 and 2100.") % {"year": funding_year}
        )
    area = _money(planned_floor_area, _("Planned floor area"))
    if subsidy_amount is not None:
        subsidy_amount = _money(subsidy_amount, _("Subsidy"))
        if subsidy_amount < 0:
            raise CaseRefused(_("The subsidy cannot be negative."))

    with transaction.atomic():
        house = (
            House.objects.select_for_update(of=("self",))
            .select_related("household__key_group")
            .get(pk=house.pk)
        )
        household = house.household
        if request_key and (replay := _replay(request_key, step="open")) is not None:
            return RenovationCase.objects.get(pk=replay.case_id)
        if not house.is_current:
            raise CaseRefused(
                _("This is not the current house of household %(archive_no)s.")
                % {"archive_no": household.archive_no}
            )
        open_case = (
            RenovationCase.objects.filter(house=house, state__in=OPEN_STATES).order_by("id").first()
        )
        if open_case is not None:
            raise CaseRefused(
                _(
                    "Household %(archive_no)s already has an open case (no. %(id)s, "
                    "%(state)s); close it before opening another."
                )
                % {
                    "archive_no": household.archive_no,
                    "id": open_case.pk,
                    "state": _state_label(open_case.state),
                }
            )
        entry = _latest_appraisal(house)
        if entry is None:
            raise CaseRefused(
                _("The house has no appraisal; a case needs an appraisal grading it C or D.")
            )
        if entry.grade not in METHODS_FOR_GRADE:
            raise CaseRefused(
                _(
                    "The house's latest appraisal (%(date)s) grades it %(grade)s; only a house "
                    "graded C or D may be renovated."
                )
                % {"date": _local_date(entry.inspection.started_at), "grade": entry.grade}
            )
        fitting = METHODS_FOR_GRADE[entry.grade]
        if method not in fitting:
            raise CaseRefused(
                _("“%(method)s” does not fit a house graded %(grade)s; use: %(choices)s.")
                % {
                    "method": RenovationMethod(method).label,
                    "grade": entry.grade,
                    "choices": ", ".join(str(m.label) for m in fitting),
                }
            )
        size = FamilyMember.objects.filter(household=household).count()
        problem = area_problem(
            household_size=size, floor_area=area, rule=area_rule_for(funding_year)
        )
        if problem:
            raise CaseRefused(problem)

        standard = subsidy_standard_for(
            year=funding_year, method=method, key_group=household.key_group
        )
        if subsidy_amount is None:
            if standard is None:
                raise CaseRefused(
                    _(
                        "There is no subsidy standard for %(year)s and “%(method)s”; enter "
                        "the amount and why."
                    )
                    % {"year": funding_year, "method": RenovationMethod(method).label}
                )
            subsidy_amount = standard.amount
        if standard is None or subsidy_amount != standard.amount:
            if not reason:
                if standard is None:
                    raise CaseRefused(
                        _(
                            "There is no subsidy standard for %(year)s and “%(method)s”; write "
                            "why this case gets %(amount)s yuan."
                        )
                        % {
                            "year": funding_year,
                            "method": RenovationMethod(method).label,
                            "amount": number(subsidy_amount),
                        }
                    )
                raise CaseRefused(
                    _(
                        "The standard subsidy is %(standard)s yuan; write why this case gets "
                        "%(amount)s yuan instead."
                    )
                    % {"standard": number(standard.amount), "amount": number(subsidy_amount)}
                )
        else:
            reason = ""

        case = RenovationCase(
            house=house,
            state=CaseState.APPLIED,
            entry_appraisal=entry,
            entry_grade=entry.grade,
            method=method,
            build_mode=build_mode,
            household_size=size,
            planned_floor_area=area,
            subsidy_standard=standard,
            subsidy_amount=subsidy_amount,
            subsidy_override_reason=reason,
            funding_year=funding_year,
            batch=(batch or "").strip(),
            created_by=user,
        )
        _save(case)
        _house_status(house, RenovationStatus.PLANNED)
        event_append(
            case=case,
            kind=CaseEventKind.OPENED,
            from_state="",
            to_state=CaseState.APPLIED,
            actor=user,
            reason=reason,
            data={
                "step": "open",
                "entry_appraisal": entry.pk,
                "entry_grade": entry.grade,
                "method": method,
                "build_mode": build_mode,
                "household_size": size,
                "planned_floor_area": str(area),
                "subsidy_amount": str(subsidy_amount),
                "subsidy_standard": standard.pk if standard else None,
                "funding_year": funding_year,
                "batch": case.batch,
            },
            request_key=request_key,
        )
    return case


def _action_problem(*, user, case, action: Action, reason="", inspection=None):
    """The error a step would meet now, or None. Role, then state, then evidence."""
    if not _role_allows(user, action):
        return _forbidden(user, action)
    if case.state not in action.from_states:
        return _wrong_state(case, action)
    if action.needs_reason and not (reason or "").strip():
        if action.name == "fail_completion":
            return CaseRefused(_("Write the fixes required before the check can pass."))
        return CaseRefused(_("Write the reason."))
    if action.check is not None:
        message = action.check(case, user, reason, inspection)
        if message:
            return CaseRefused(message)
    return None


@_idempotent
def case_act(
    *,
    user,
    case_id: int,
    action: str,
    reason: str = "",
    inspection: Inspection | None = None,
    request_key: str | None = None,
) -> RenovationCase:
    """Take one step of the chain (see the table in this module's docstring).

    `reason`: required for reject, withdraw and fail_completion (the fixes required).
    `inspection`: for pass_completion, the completion visit to judge (default: the house's
    latest completion visit with an appraisal).
    """
    spec = ACTIONS.get(action)
    if spec is None or action == "pay":
        choices = ", ".join(name for name in ACTIONS if name != "pay")
        raise CaseRefused(
            _("“%(value)s” is not a step; use one of: %(choices)s.")
            % {"value": action, "choices": choices}
        )
    reason = (reason or "").strip()
    replay = _replay(request_key, case_id=case_id, step=action)
    if replay is not None:
        return _visible_case(user=user, case_id=case_id)
    if not _role_allows(user, spec):
        _visible_case(user=user, case_id=case_id)  # 404 outside the user's regions first
        raise _forbidden(user, spec)

    with transaction.atomic():
        case = _case_for_update(user=user, case_id=case_id)
        if request_key and _replay(request_key, case_id=case_id, step=action) is not None:
            return case
        problem = _action_problem(
            user=user, case=case, action=spec, reason=reason, inspection=inspection
        )
        if problem is not None:
            raise problem

        from_state = case.state
        now = timezone.now()
        data: dict = {"step": action}
        update = ["state", "updated_at"]
        case.state = spec.to_state
        if action == "notice":
            case.notice_started_at = now
            update.append("notice_started_at")
            data["notice_started_at"] = now.isoformat()
        elif action == "start_works":
            case.works_inspector = user
            update.append("works_inspector")
            data["works_inspector"] = user.pk
        elif action == "pass_completion":
            visit = _completion_inspection(case, inspection)
            case.completion_inspection = visit
            case.completion_passed_at = now
            update += ["completion_inspection", "completion_passed_at"]
            data.update(
                {
                    "completion_inspection": visit.pk,
                    "grade": visit.appraisal.grade,
                    "completion_inspector": visit.inspector_id,
                }
            )
        elif action in ("reject", "withdraw"):
            case.closing_reason = reason
            update.append("closing_reason")
        case.full_clean(validate_unique=False, validate_constraints=False)
        case.save(update_fields=update)
        if spec.to_state in HOUSE_STATUS:
            _house_status(case.house, HOUSE_STATUS[spec.to_state])
        event_append(
            case=case,
            kind=CaseEventKind.TRANSITION,
            from_state=from_state,
            to_state=case.state,
            actor=user,
            reason=reason,
            data=data,
            request_key=request_key,
            at=now,
        )
    return case


def _visible_case(*, user, case_id) -> RenovationCase:
    try:
        case = RenovationCase.objects.select_related("house__household__village").get(
            pk=int(case_id)
        )
    except (RenovationCase.DoesNotExist, TypeError, ValueError):
        raise Http404("No such case.") from None
    if not can_view_case(user, case):
        raise Http404("No such case.")
    return case


@_idempotent
def case_pay(
    *,
    user,
    case_id: int,
    amount,
    paid_on: datetime.date,
    reference: str,
    request_key: str | None = None,
) -> Payment:
    """Record one payment of the subsidy after the completion check passed.

    The total paid never exceeds the subsidy; when it reaches it the case is paid (closed).
    """
    spec = ACTIONS["pay"]
    replay = _replay(request_key, case_id=case_id, step="pay")
    if replay is not None:
        _visible_case(user=user, case_id=case_id)
        return Payment.objects.get(pk=replay.data["payment"])
    if not _role_allows(user, spec):
        _visible_case(user=user, case_id=case_id)
        raise _forbidden(user, spec)
    amount = _money(amount, _("Amount"))
    if amount <= 0:
        raise CaseRefused(_("A payment must be more than 0 yuan."))
    reference = (reference or "").strip()
    if not reference:
        raise CaseRefused(_("Enter the bank or treasury reference of the payment."))
    if not isinstance(paid_on, datetime.date) or isinstance(paid_on, datetime.datetime):
        raise CaseRefused(_("The payment date must be a date, e.g. 2026-12-01."))
    if paid_on > timezone.localdate():
        raise CaseRefused(
            _("The payment date %(date)s is in the future.") % {"date": paid_on.isoformat()}
        )

    with transaction.atomic():
        case = _case_for_update(user=user, case_id=case_id)
        if request_key and (replay := _replay(request_key, case_id=case_id, step="pay")):
            return Payment.objects.get(pk=replay.data["payment"])
        problem = _action_problem(user=user, case=case, action=spec)
        if problem is not None:
            raise problem
        remaining = case.subsidy_amount - case.paid_total
        if amount > remaining:
            raise CaseRefused(
                _(
                    "A payment of %(amount)s yuan would bring the total to %(total)s yuan, "
                    "above the subsidy of %(subsidy)s yuan; at most %(remaining)s yuan "
                    "remains to pay."
                )
                % {
                    "amount": number(amount),
                    "total": number(case.paid_total + amount),
                    "subsidy": number(case.subsidy_amount),
                    "remaining": number(remaining),
                }
            )
        if (
            case.completion_passed_at
            and paid_on < timezone.localtime(case.completion_passed_at).date()
        ):
            raise CaseRefused(
                _("The payment date %(date)s is before the completion check passed (%(passed)s).")
                % {"date": paid_on.isoformat(), "passed": _local_date(case.completion_passed_at)}
            )
        payment = Payment(
            case=case, amount=amount, paid_on=paid_on, reference=reference, recorded_by=user
        )
        _save(payment)
        from_state = case.state
        case.paid_total += amount
        if case.paid_total == case.subsidy_amount:
            case.state = CaseState.PAID
        case.save(update_fields=["paid_total", "state", "updated_at"])
        event_append(
            case=case,
            kind=CaseEventKind.PAYMENT,
            from_state=from_state,
            to_state=case.state,
            actor=user,
            data={
                "step": "pay",
                "payment": payment.pk,
                "amount": str(amount),
                "paid_on": paid_on.isoformat(),
                "reference": reference,
                "paid_total": str(case.paid_total),
            },
            request_key=request_key,
        )
    return payment


def available_actions(*, user, case: RenovationCase) -> list[dict]:
    """The steps that start from the case's current state, each as
    {"action", "label", "allowed": bool, "reason": str} ("" when allowed): the page shows
    the allowed ones as buttons and the others' reasons (why the next step is not yet
    possible, or whose step it is). Steps the user's role may never take say so too.
    """
    result = []
    for spec in ACTIONS.values():
        if case.state not in spec.from_states:
            continue
        if spec.name == "pay" and case.paid_total >= case.subsidy_amount:
            continue
        problem = None if can_view_case(user, case) else CaseForbidden()
        if problem is None:
            # Reasons are asked for on the form, so they do not block the button.
            problem = _action_problem(
                user=user, case=case, action=spec, reason="(asked on the form)"
            )
        result.append(
            {
                "action": spec.name,
                "label": str(spec.label),
                "allowed": problem is None,
                "reason": "" if problem is None else str(problem.message),
            }
        )
    return result
