"""Every write of a renovation case: opening it, each step of the chain, each payment.

One service per step (case_village_review, case_notice, ... case_pay), following the table
in renovation/workflow.py, over one shared core (_take_step) that, in one transaction:
1. finds the case in the user's regions (404 otherwise) and locks its row
   (select_for_update), so two officials acting at once take turns;
2. checks the user's role (CaseForbidden, 403), the case's state (CaseStateConflict,
   409: e.g. another official approved it a moment ago) and the step's evidence and
   input (CaseRefused, 400), each with a message that says exactly why;
3. changes the case (validated first) and the house's renovation status, and appends one
   event to the hash chain (renovation.events.event_append).
A refused step raises before anything is written, so it changes nothing.

Idempotent by a client request key: the key is stored on the step's event (unique); a
repeat of the same key by the same user returns the case (or payment) as it is now and
writes nothing, and the key reused for another case, step, house or user is an
IdempotencyConflict. A repeat is authorized like a first request (region, role; for
case_open the house): a user who may not take the step is refused, never handed the stored
answer. The services that create
(case_open, case_pay) answer (object, created), so callers never guess which it was.
`case_act` takes a step by its name (the pages and the API receive names);
`case_batch_act` takes one step on several cases, each judged on its own.

Every step (the payment too) records the official's review opinion (审核意见) on its event
and needs their explicit confirmation; a step that approves on the strength of photos
(renovation.evidence.FLAG_STEPS) needs each evidence flag of those photos acknowledged
with a reason, by an ACKNOWLEDGE event in the step's transaction or before it.

The clock: every write takes `at` (default now) for imports of historical cases, from
Python only (the pages and the API never pass it). The events' times and the dates a step
sets (the notice's start, the completion check, the case's opening, the payment's record)
come from it; it may not be in the future (beyond the clock skew allowed) nor before the
case's previous event.
"""

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from housing.bounds import clock_skew
from housing.models import FamilyMember, House
from inspections.errors import IdempotencyConflict
from inspections.models import Appraisal, Inspection
from renovation.errors import CaseError, CaseForbidden, CaseRefused
from renovation.events import event_append
from renovation.evidence import FlagCheck, completion_visit, photo_key, step_flag_checks
from renovation.models import (
    METHODS_FOR_GRADE,
    OPEN_STATES,
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    Payment,
    RenovationCase,
    RenovationMethod,
    funding_year_validate,
)
from renovation.permissions import can_open_case, can_view_case
from renovation.rules import area_problem, area_rule_for, number, subsidy_standard_for
from renovation.selectors import CaseFilters, case_detail_queryset, case_list
from renovation.workflow import (
    HOUSE_STATUS,
    STEPS,
    Step,
    confirmation_missing,
    forbidden,
    local_date,
    local_time,
    opinion_missing,
    role_label,
    role_may,
    state_label,
    step_problem,
)

# ---------------------------------------------------------------------------------------
# Helpers


def _case_get(*, user, case_id, lock: bool = False, request_key=None) -> RenovationCase:
    """The case, with what its answer shows; 404 when absent or outside the user's regions.

    lock: row-locked (select_for_update). With a request key, the same query brings the
    event already stored under it, if any (`replayed_case_id`, `replayed_step`,
    `replayed_actor_id`: see _replay_of)."""
    qs = case_detail_queryset()
    if lock:
        # Locked to be written: with the time of its latest event, which the next may not
        # precede (_not_before_previous).
        latest = CaseEvent.objects.filter(case=OuterRef("pk")).order_by("-at")
        qs = qs.select_for_update(of=("self",)).annotate(
            last_event_at=Subquery(latest.values("at")[:1])
        )
    if request_key:
        stored = CaseEvent.objects.filter(request_key=request_key)
        qs = qs.annotate(
            replayed_case_id=Subquery(stored.values("case_id")[:1]),
            replayed_step=Subquery(stored.values("data__step")[:1]),
            replayed_actor_id=Subquery(stored.values("actor_id")[:1]),
        )
    try:
        case = qs.get(pk=int(case_id))
    except (RenovationCase.DoesNotExist, TypeError, ValueError):
        raise Http404("No such case.") from None
    if not can_view_case(user, case):
        raise Http404("No such case.")
    return case


def _conflict(request_key: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        _(
            "The request key %(key)s was already used for another step or case; a new "
            "request needs a new key."
        )
        % {"key": request_key}
    )


def _someone_elses(request_key: str) -> IdempotencyConflict:
    return IdempotencyConflict(
        _(
            "The request key %(key)s was already used by another user; a new request needs "
            "a new key."
        )
        % {"key": request_key}
    )


def _replay(request_key, *, user, case_id=None, step: str, house=None) -> CaseEvent | None:
    """The event already stored under this request key, or None. A key used for another
    case, step or house (case_open), or by another user, is a conflict. The caller has
    already authorized the user as for a first request."""
    if not request_key:
        return None
    event = CaseEvent.objects.filter(request_key=request_key).select_related("case__house").first()
    if event is None:
        return None
    if (case_id is not None and event.case_id != int(case_id)) or event.data.get("step") != step:
        raise _conflict(request_key)
    if event.actor_id != user.pk:
        raise _someone_elses(request_key)
    if house is not None and event.case.house_id != house.pk:
        raise IdempotencyConflict(
            _(
                "The request key %(key)s already opened case no. %(id)s for another house "
                "(household %(archive_no)s); a new request needs a new key."
            )
            % {
                "key": request_key,
                "id": event.case_id,
                "archive_no": event.case.house.household.archive_no,
            }
        )
    return event


def _replay_of(case: RenovationCase, request_key, *, user, step: str) -> bool:
    """Is this a repeat, by the same user, of a request already carried out on this locked
    case (loaded by _case_get with the key)? A key used for another case or step, or by
    another user, is a conflict."""
    if not request_key or getattr(case, "replayed_case_id", None) is None:
        return False
    if case.replayed_case_id != case.pk or case.replayed_step != step:
        raise _conflict(request_key)
    if case.replayed_actor_id != user.pk:
        raise _someone_elses(request_key)
    return True


def _check_request_key(request_key) -> str | None:
    if request_key in (None, ""):
        return None
    request_key = str(request_key)
    if len(request_key) > 64:
        raise CaseRefused(_("A request key has at most 64 characters."))
    return request_key


def _refused(error: ValidationError) -> CaseRefused:
    messages = [
        f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in error.message_dict.items()
    ]
    return CaseRefused("; ".join(messages))


def _save(obj, **kwargs) -> None:
    try:
        obj.full_clean(**kwargs)
    except ValidationError as error:
        raise _refused(error) from None
    obj.save()


def _save_fields(obj, fields: list[str]) -> None:
    """Validate and save only the fields a step changed: the others were valid when saved,
    and validating their foreign keys again would cost a query each."""
    names = {f.name for f in obj._meta.concrete_fields}
    try:
        obj.full_clean(
            exclude=names - set(fields), validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        raise _refused(error) from None
    obj.save(update_fields=[*fields, "updated_at"])


def _house_status(house: House, status: str) -> None:
    # A model save, not a queryset update, so the house's history records the change.
    if house.renovation_status != status:
        house.renovation_status = status
        house.save(update_fields=["renovation_status"])


def _latest_appraisal(house: House, at: datetime.datetime | None = None) -> Appraisal | None:
    """The house's latest appraisal, or with `at` the latest whose visit started at or
    before it: a case imported with its historical time stands on the appraisal made by
    then, never on a later one."""
    # The same order as the house's grade (inspections.services.house_grade_follow_latest).
    appraisals = Appraisal.objects.filter(inspection__house=house)
    if at is not None:
        appraisals = appraisals.filter(inspection__started_at__lte=at)
    return (
        appraisals.select_related("inspection")
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
# The steps of the chain

# A step's own changes: (case, user, now, data for the event, inspection, reason) -> the
# fields it set, beyond the state. `now` is the step's time (its `at`).
Apply = Callable[..., list[str]]

# One acknowledgement of an evidence flag: {"photo": key, "flag": code, "reason": text}.
Acknowledgement = Mapping[str, object]


def _clock(at: datetime.datetime | None) -> datetime.datetime:
    """The time of a write: now, or the `at` a Python caller gives for a historical import
    (never later than now plus the clock skew allowed, housing.bounds.clock_skew)."""
    if at is None:
        return timezone.now()
    if not isinstance(at, datetime.datetime) or timezone.is_naive(at):
        raise CaseRefused(_("The time of a step must be a date and time with its time zone."))
    if at > timezone.now() + clock_skew():
        raise CaseRefused(_("The time %(at)s is in the future.") % {"at": local_time(at)})
    return at


def _not_before_previous(case: RenovationCase, at: datetime.datetime) -> None:
    """A case's events tell its story in order: none is dated before the one before it.
    (The case is the locked one from _case_get, which brings its latest event's time.)"""
    previous = case.last_event_at
    if previous is not None and at < previous:
        raise CaseRefused(
            _(
                "The time %(at)s is before the case's previous event (%(previous)s): a step "
                "cannot be dated before it."
            )
            % {"at": local_time(at), "previous": local_time(previous)}
        )


def _unacknowledged_refusal(step: Step, pending: list[FlagCheck]) -> CaseRefused:
    return CaseRefused(
        _(
            "The step “%(action)s” relies on flagged evidence: acknowledge each flag with a "
            "reason first. Not acknowledged: %(flags)s."
        )
        % {"action": step.label, "flags": "; ".join(check.named() for check in pending)}
    )


def _acknowledge(
    *,
    case: RenovationCase,
    step: Step,
    user,
    acknowledgements,
    inspection: Inspection | None,
    at: datetime.datetime,
) -> None:
    """Record the user's acknowledgements of the flags the step relies on (one event each,
    in the step's transaction), then refuse the step while any flag is unacknowledged. A
    flag acknowledged before stays acknowledged; acknowledging it again records nothing."""
    checks = step_flag_checks(case, step.name, inspection)
    by_key = {(check.key, check.code): check for check in checks}
    done: set[tuple[str, str]] = set()
    for item in acknowledgements or ():
        item = item if isinstance(item, Mapping) else {}
        key = photo_key(item.get("photo"))
        code = str(item.get("flag") or "").strip()
        reason = str(item.get("reason") or "").strip()
        check = by_key.get((key, code))
        if check is None:
            raise CaseRefused(
                _(
                    "Photo %(photo)s has no flag “%(flag)s” among the evidence the step "
                    "“%(action)s” relies on."
                )
                % {"photo": item.get("photo") or "?", "flag": code or "?", "action": step.label}
            )
        if not reason:
            raise CaseRefused(
                _("Write why you accept this flag: %(flag)s.") % {"flag": check.named()}
            )
        if check.acknowledged or (key, code) in done:
            continue
        check.acknowledgement = event_append(
            case=case,
            kind=CaseEventKind.ACKNOWLEDGE,
            from_state=case.state,
            to_state=case.state,
            actor=user,
            data={"photo": key, "flag": code, "reason": reason, "for_step": step.name},
            at=at,
        )
        done.add((key, code))
    pending = [check for check in checks if not check.acknowledged]
    if pending:
        raise _unacknowledged_refusal(step, pending)


def _take_step(
    step: Step,
    *,
    user,
    case_id: int,
    reason: str = "",
    opinion: str = "",
    confirm: bool = False,
    acknowledgements=(),
    inspection: Inspection | None = None,
    request_key: str | None = None,
    apply: Apply | None = None,
    at: datetime.datetime | None = None,
) -> RenovationCase:
    """The core every step shares: find and lock the case, check, write, append the event."""
    reason = (reason or "").strip()
    opinion = (opinion or "").strip()
    confirm = confirm is True  # only an explicit True confirms
    if not role_may(user, step):
        # Refused as a first request would be, repeated key or not: 404 outside the user's
        # regions first, then 403.
        _case_get(user=user, case_id=case_id)
        raise forbidden(user, step)
    now = _clock(at)

    with transaction.atomic():
        case = _case_get(user=user, case_id=case_id, lock=True, request_key=request_key)
        if _replay_of(case, request_key, user=user, step=step.name):
            return case
        problem = step_problem(
            user=user,
            case=case,
            step=step,
            reason=reason,
            inspection=inspection,
            opinion=opinion,
            confirm=confirm,
            at=now,
        )
        if problem is not None:
            raise problem
        _not_before_previous(case, now)
        _acknowledge(
            case=case,
            step=step,
            user=user,
            acknowledgements=acknowledgements,
            inspection=inspection,
            at=now,
        )

        from_state = case.state
        data: dict = {"step": step.name, "opinion": opinion, "confirmed": True}
        case.state = step.to_state
        changed = ["state"]
        if apply is not None:
            changed += apply(
                case=case, user=user, now=now, data=data, inspection=inspection, reason=reason
            )
        _save_fields(case, changed)
        if step.to_state in HOUSE_STATUS:
            _house_status(case.house, HOUSE_STATUS[step.to_state])
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


def _stamp_notice(*, case, now, data, **_ignored) -> list[str]:
    case.notice_started_at = now
    data["notice_started_at"] = now.isoformat()
    return ["notice_started_at"]


def _record_works_inspector(*, case, user, data, **_ignored) -> list[str]:
    case.works_inspector = user
    data["works_inspector"] = user.pk
    return ["works_inspector"]


def _record_completion(*, case, now, data, inspection, **_ignored) -> list[str]:
    visit = completion_visit(case, inspection)
    case.completion_inspection = visit
    case.completion_passed_at = now
    data.update(
        {
            "completion_inspection": visit.pk,
            "grade": visit.appraisal.grade,
            "completion_inspector": visit.inspector_id,
        }
    )
    return ["completion_inspection", "completion_passed_at"]


def _record_closing_reason(*, case, reason, **_ignored) -> list[str]:
    case.closing_reason = reason
    return ["closing_reason"]


# Every step takes, besides its own input (keyword-only):
#   opinion          the official's review opinion (审核意见), recorded on the event; required
#   confirm          True: the official ticked "I confirm"; anything else is refused
#   acknowledgements [{photo, flag, reason}]: the evidence flags the official accepts (for
#                    the steps that rely on photos: renovation.evidence.FLAG_STEPS)
#   at               the step's time, for imports of historical cases (Python callers only;
#                    default now): not in the future, not before the case's previous event
#   request_key      idempotency (see the module's docstring)


STEP_INPUT_DOC = """

    Keywords: `opinion` (the review opinion, required) and `confirm=True` (required);
    `reason` (required to reject, withdraw and fail a check: the fixes required);
    `acknowledgements` [{photo, flag, reason}] for each flag the step relies on not yet
    acknowledged; `inspection` (the completion visit to judge, for the check);
    `request_key` (idempotency); `at` (the step's time, for historical imports; default now).
    """


def _step_service(name: str, doc: str, apply: Apply | None = None):
    """The service of one step of the chain: `_take_step` with the step and what it sets."""
    step = STEPS[name]

    def service(*, user, case_id: int, request_key: str | None = None, **given) -> RenovationCase:
        return _take_step(
            step, user=user, case_id=case_id, request_key=request_key, apply=apply, **given
        )

    service.__name__ = service.__qualname__ = f"case_{name}"
    service.__doc__ = doc + STEP_INPUT_DOC
    return _idempotent(service)


case_village_review = _step_service("village_review", "Applied → reviewed by the village.")
case_notice = _step_service(
    "notice",
    "Reviewed by the village → publicly noticed, from the step's time (the notice period starts).",
    _stamp_notice,
)
case_township_check = _step_service(
    "township_check", "Noticed → checked by the township, once the notice period is over."
)
case_county_approve = _step_service(
    "county_approve",
    "Checked by the township → approved by the county (the entry appraisal's flagged photos "
    "acknowledged).",
)
case_start_works = _step_service(
    "start_works",
    "Approved → works started, with every before-photo (their flags acknowledged); the user "
    "supervises the works.",
    _record_works_inspector,
)
case_finish_works = _step_service(
    "finish_works",
    "Works started → works finished, with every after-photo (their flags acknowledged).",
)
case_pass_completion = _step_service(
    "pass_completion",
    "Works finished → completion check passed, judged on `inspection` (default: the house's "
    "latest completion visit with an appraisal): graded A or B by another inspector than the "
    "works', and passed by another official than the works' inspector. The flags of the "
    "after-photos and of the visit's photos must be acknowledged.",
    _record_completion,
)
case_fail_completion = _step_service(
    "fail_completion", "Works finished → back to works started; `reason` is the fixes required."
)
case_reject = _step_service(
    "reject", "Before the county's approval → rejected, with the reason.", _record_closing_reason
)
case_withdraw = _step_service(
    "withdraw",
    "Any open state, nothing paid yet → withdrawn, with the reason.",
    _record_closing_reason,
)


STEP_SERVICES: dict[str, Callable[..., RenovationCase]] = {
    "village_review": case_village_review,
    "notice": case_notice,
    "township_check": case_township_check,
    "county_approve": case_county_approve,
    "start_works": case_start_works,
    "finish_works": case_finish_works,
    "pass_completion": case_pass_completion,
    "fail_completion": case_fail_completion,
    "reject": case_reject,
    "withdraw": case_withdraw,
}


def case_act(
    *,
    user,
    case_id: int,
    action: str,
    opinion: str = "",
    confirm: bool = False,
    reason: str = "",
    acknowledgements=(),
    inspection: Inspection | None = None,
    request_key: str | None = None,
    at: datetime.datetime | None = None,
) -> RenovationCase:
    """Take one step of the chain by its name (see renovation.workflow.STEPS).

    `opinion` and `confirm`: the review opinion and the confirmation every step needs.
    `reason`: required for reject, withdraw and fail_completion (the fixes required).
    `acknowledgements`: [{photo, flag, reason}] for the flagged photos the step relies on.
    `inspection`: for the completion check, the visit to judge.
    `at`: the step's time, for Python callers importing historical cases (default now).
    """
    service = STEP_SERVICES.get(action)
    if service is None:
        raise CaseRefused(
            _("“%(value)s” is not a step; use one of: %(choices)s.")
            % {"value": action, "choices": ", ".join(STEP_SERVICES)}
        )
    kwargs = {"inspection": inspection} if STEPS[action].needs_inspection else {}
    return service(
        user=user,
        case_id=case_id,
        reason=reason,
        opinion=opinion,
        confirm=confirm,
        acknowledgements=acknowledgements,
        request_key=request_key,
        at=at,
        **kwargs,
    )


@dataclass
class BatchResult:
    """What one case of a batch came to: done (and its new state), or why not."""

    case_id: int
    case: RenovationCase | None = None
    done: bool = False
    message: str = ""


def case_batch_act(
    *,
    user,
    action: str,
    case_ids: list[int],
    request_key: str,
    opinion: str = "",
    confirm: bool = False,
) -> list[BatchResult]:
    """One batchable step on several cases, each checked and written on its own: some may
    be done while others are refused. One review opinion and one confirmation cover the
    batch (each case's event records the opinion). Each case gets its own key derived from
    `request_key`, so a resubmitted batch repeats each case's step, never twice."""
    step = STEPS.get(action)
    if step is None or not step.batchable:
        choices = ", ".join(name for name, s in STEPS.items() if s.batchable)
        raise CaseRefused(
            _("“%(value)s” is not a step for several cases; use one of: %(choices)s.")
            % {"value": action, "choices": choices}
        )
    if not role_may(user, step):
        raise CaseForbidden(_("Your role takes no steps on several cases at once."))
    # The batch's own input is judged once, before any case.
    if not (opinion or "").strip():
        raise opinion_missing(step)
    if confirm is not True:
        raise confirmation_missing(step)
    found = {c.pk: c for c in case_list(user=user, filters=CaseFilters(ids=tuple(case_ids)))}
    results = []
    for case_id in case_ids:
        row = BatchResult(case_id=case_id, case=found.get(case_id))
        if row.case is None:
            row.message = _("No such case among yours.")
        else:
            try:
                row.case = case_act(
                    user=user,
                    case_id=case_id,
                    action=action,
                    opinion=opinion,
                    confirm=confirm,
                    request_key=f"{request_key[:40]}:{case_id}",
                )
            except (CaseError, IdempotencyConflict) as exc:
                row.message = str(exc.message)
            else:
                row.done = True
                row.message = _("Now “%(state)s”.") % {"state": row.case.get_state_display()}
        results.append(row)
    return results


# ---------------------------------------------------------------------------------------
# Opening a case and paying it


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
    at: datetime.datetime | None = None,
) -> tuple[RenovationCase, bool]:
    """Open a case for a house graded C or D (its latest appraisal is the entry appraisal).

    The method must fit the grade; the planned floor area must be within the area rule of
    the funding year for the household's size (its family members); the subsidy is the
    year's standard for the method and the household's key group, unless `subsidy_amount`
    is given with a reason. One open case per house at a time. `at`: when it was opened
    (Python callers importing historical cases; default now).

    Answers (case, created): created is False for a repeat of the same request key (by the
    same user, for the same house), which writes nothing.
    """
    # A repeat is authorized as a first request is: region, then role, then the house.
    if not can_view_case(user, RenovationCase(house=house)):
        raise Http404("No such house.")
    if not can_open_case(user, house):
        raise CaseForbidden(
            _("Your role (%(role)s) may not open a renovation case.") % {"role": role_label(user)}
        )
    replay = _replay(request_key, user=user, step="open", house=house)
    if replay is not None:
        return RenovationCase.objects.get(pk=replay.case_id), False
    reason = (subsidy_override_reason or "").strip()
    now = _clock(at)
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
    try:
        funding_year_validate(funding_year)
    except ValidationError as error:
        raise CaseRefused(error.messages[0]) from None
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
        replay = _replay(request_key, user=user, step="open", house=house)
        if replay is not None:
            return RenovationCase.objects.get(pk=replay.case_id), False
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
                    "state": state_label(open_case.state),
                }
            )
        entry = _latest_appraisal(house, at)
        if entry is None and at is not None:
            raise CaseRefused(
                _(
                    "The house has no appraisal made on or before %(at)s, when the case is "
                    "opened; a case needs an appraisal grading it C or D made by then."
                )
                % {"at": local_time(now)}
            )
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
                % {"date": local_date(entry.inspection.started_at), "grade": entry.grade}
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
            created_at=now,
        )
        _save(case)
        _house_status(house, HOUSE_STATUS[CaseState.APPLIED])
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
            at=now,
        )
    return case, True


@_idempotent
def case_pay(
    *,
    user,
    case_id: int,
    amount,
    paid_on: datetime.date,
    reference: str,
    opinion: str = "",
    confirm: bool = False,
    request_key: str | None = None,
    at: datetime.datetime | None = None,
) -> tuple[Payment, bool]:
    """Record one payment of the subsidy after the completion check passed, with the
    official's review opinion and confirmation.

    The total paid never exceeds the subsidy; when it reaches it the case is paid (closed).
    `at`: when the payment is recorded (Python callers importing historical cases; default
    now), on or after the day it was paid.
    Answers (payment, created): created is False for a repeat of the same request key.
    """
    step = STEPS["pay"]
    # A repeat is authorized as a first request is: region (404), then role (403); the
    # stored answer comes only after, under the row lock.
    if not role_may(user, step):
        _case_get(user=user, case_id=case_id)
        raise forbidden(user, step)
    amount = _money(amount, _("Amount"))
    if amount <= 0:
        raise CaseRefused(_("A payment must be more than 0 yuan."))
    reference = (reference or "").strip()
    if not reference:
        raise CaseRefused(_("Enter the bank or treasury reference of the payment."))
    if not isinstance(paid_on, datetime.date) or isinstance(paid_on, datetime.datetime):
        raise CaseRefused(_("The payment date must be a date, e.g. 2026-12-01."))
    now = _clock(at)
    if paid_on > timezone.localdate():
        raise CaseRefused(
            _("The payment date %(date)s is in the future.") % {"date": paid_on.isoformat()}
        )
    if paid_on > timezone.localdate(now):
        raise CaseRefused(
            _("The payment date %(date)s is after the time it is recorded (%(at)s).")
            % {"date": paid_on.isoformat(), "at": local_time(now)}
        )
    opinion = (opinion or "").strip()
    confirm = confirm is True  # only an explicit True confirms

    with transaction.atomic():
        case = _case_get(user=user, case_id=case_id, lock=True, request_key=request_key)
        if _replay_of(case, request_key, user=user, step="pay"):
            replay = _replay(request_key, user=user, case_id=case_id, step="pay")
            return Payment.objects.get(pk=replay.data["payment"]), False
        problem = step_problem(
            user=user, case=case, step=step, opinion=opinion, confirm=confirm, at=now
        )
        if problem is not None:
            raise problem
        _not_before_previous(case, now)
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
                % {"date": paid_on.isoformat(), "passed": local_date(case.completion_passed_at)}
            )
        payment = Payment(
            case=case,
            amount=amount,
            paid_on=paid_on,
            reference=reference,
            recorded_by=user,
            created_at=now,
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
                "opinion": opinion,
                "confirmed": True,
            },
            request_key=request_key,
            at=now,
        )
    return payment, True
