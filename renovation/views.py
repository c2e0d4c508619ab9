"""The renovation-case pages: the list (with batch actions), a case, its steps and payments.

Thin: parse, authorize, call one service or selector, answer. Whether a step is allowed is
decided by the case services alone (role, state, evidence, row lock); these views show what
the services say. A refused step re-renders the case with the service's reason, with the
status the API would answer (400 not possible yet, 403 not your role, 409 someone else
changed the case first), and nothing has changed.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from inspections.errors import IdempotencyConflict
from renovation.errors import CaseError
from renovation.forms import (
    CaseActForm,
    CaseBatchForm,
    CaseFilterForm,
    CasePayForm,
    new_request_key,
)
from renovation.permissions import can_act_on_case
from renovation.rules import is_overdue, payment_due_date
from renovation.selectors import (
    CaseFilters,
    acknowledgements_for_visit,
    available_actions,
    case_evidence,
    case_get,
    case_list,
    case_state_counts,
    case_timeline,
    completion_choices,
    completion_inspections,
    next_steps_note,
)
from renovation.services import case_act, case_batch_act, case_pay
from renovation.workflow import STEPS, batch_steps_for

PAGE_SIZE = 50
BATCH_RESULTS_KEY = "anju_case_batch_results"
REFUSALS = (CaseError, IdempotencyConflict)


def batch_actions_for(*, user) -> list[tuple[str, str]]:
    """The batch steps this user's role may take, as (action, label) choices."""
    return [(step.name, str(step.label)) for step in batch_steps_for(user)]


def _list_url(query: str = "") -> str:
    """The list, with the filters it had (re-encoded: only a query string can come back)."""
    url = reverse("cases:case_list")
    query = QueryDict(query).urlencode()
    return f"{url}?{query}" if query else url


@require_GET
@login_required
def case_list_view(request):
    form = CaseFilterForm(request.GET or None, user=request.user)
    page = None
    counts = []
    if form.is_bound and not form.is_valid():
        cases = None
    else:
        filters = form.filters() if form.is_bound else CaseFilters()
        cases = case_list(user=request.user, filters=filters)
        page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
        counts = case_state_counts(user=request.user, filters=filters)
        for case in page.object_list:
            case.overdue = is_overdue(case)
    batch = batch_actions_for(user=request.user)
    query = request.GET.urlencode()
    return render(
        request,
        "renovation/case_list.html",
        {
            "form": form,
            "page": page,
            "state_counts": counts,
            "filtered": form.is_bound,
            "batch_form": CaseBatchForm(
                initial={"request_key": new_request_key(), "query": query},
                actions=batch,
            )
            if batch
            else None,
            "batch_results": request.session.pop(BATCH_RESULTS_KEY, None),
        },
    )


def _detail_context(request, case, *, act_form=None, pay_form=None, error=None) -> dict:
    user = request.user
    actions = available_actions(user=user, case=case)
    steps = [a for a in actions if a["action"] != "pay"]
    allowed = [a for a in steps if a["allowed"]]
    for action in allowed:
        action["needs_reason"] = STEPS[action["action"]].needs_reason
        action["needs_inspection"] = STEPS[action["action"]].needs_inspection
        action["request_key"] = new_request_key()
        if action["action"] == "pass_completion":
            _offer_visits(action, completion_choices(user=user, case=case), act_form)
        _keep_typed_reasons(action, act_form)
    # The user's own steps (the payment too) that they may not take now, with the service's
    # reason (evidence missing, notice period not over, separation of duties...): no button
    # they cannot use. Other roles' steps are named, not explained.
    blocked = [a for a in actions if not a["allowed"] and can_act_on_case(user, case, a["action"])]
    waiting = [
        a
        for a in steps
        if not a["allowed"]
        and not can_act_on_case(user, case, a["action"])
        and not STEPS[a["action"]].closing
    ]
    can_pay = any(a["action"] == "pay" and a["allowed"] for a in actions)
    inspections = completion_inspections(user=user, case=case)
    if can_pay and pay_form is None:
        pay_form = CasePayForm(
            initial={
                "request_key": new_request_key(),
                "amount": case.subsidy_amount - case.paid_total,
            }
        )
    return {
        "case": case,
        "household": case.house.household,
        "timeline": case_timeline(case=case),
        "evidence": case_evidence(case=case, just_loaded=True),
        "allowed_actions": allowed,
        "blocked_actions": blocked,
        "waiting_actions": waiting,
        "completion_inspections": list(inspections)
        if any(a["needs_inspection"] for a in allowed)
        else [],
        "act_form": act_form,
        "visit_choices": any(a.get("visits") for a in allowed),
        "pay_form": pay_form if can_pay else None,
        "payments": list(case.payments.all()),
        "remaining": case.subsidy_amount - case.paid_total,
        "overdue": is_overdue(case),
        "payment_due": payment_due_date(case),
        "note": next_steps_note(user=user, case=case, actions=actions),
        "error": error,
    }


def _sent_for(act_form, action: dict) -> bool:
    return act_form is not None and act_form.data.get("action") == action["action"]


def _offer_visits(action: dict, choices, act_form) -> None:
    """The completion check offers each usable visit with the flags of its own photos to
    acknowledge (the page shows the chosen visit's; without scripts, all of them), after
    the flags every visit shares. The visit sent last is chosen again, else the default."""
    action["flags"] = choices.shared
    action["visits"] = choices.usable
    action["unusable_visits"] = choices.unusable
    sent = str(act_form.data.get("inspection") or "") if _sent_for(act_form, action) else ""
    chosen = next((c for c in choices.usable if str(c.inspection.pk) == sent), None)
    if chosen is None and choices.usable:
        chosen = choices.usable[0]
    if chosen is not None:
        chosen.selected = True


def _keep_typed_reasons(action: dict, act_form) -> None:
    """A refused step's page keeps the reasons typed for each flag (`typed` on each)."""
    if not _sent_for(act_form, action):
        return
    typed = {(a["photo"], a["flag"]): a["reason"] for a in act_form.acknowledgements()}
    checks = list(action["flags"])
    for choice in action.get("visits", ()):
        checks += choice.flags
    for check in checks:
        check.typed = typed.get((check.key, check.code), "")


def _refused(request, case, exc, **forms):
    """The case page again, with the service's reason and the status the API would answer."""
    context = _detail_context(request, case, error=str(exc.message), **forms)
    status = getattr(exc, "status", 409)  # IdempotencyConflict: a key reused elsewhere
    return render(request, "renovation/case_detail.html", context, status=status)


@require_GET
@login_required
def case_detail_view(request, pk: int):
    case = case_get(user=request.user, pk=pk)
    return render(request, "renovation/case_detail.html", _detail_context(request, case))


@require_POST
@login_required
def case_act_view(request, pk: int):
    case = case_get(user=request.user, pk=pk)
    form = CaseActForm(
        request.POST, inspections=completion_inspections(user=request.user, case=case)
    )
    if not form.is_valid():
        # The step's form has no visible fields but its reason and pick: say what was wrong.
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
        context = _detail_context(request, case, act_form=form, error=error)
        return render(request, "renovation/case_detail.html", context, status=400)
    data = form.cleaned_data
    try:
        case_act(
            user=request.user,
            case_id=case.pk,
            action=data["action"],
            reason=data["reason"].strip(),
            opinion=data["opinion"].strip(),
            confirm=data["confirm"],
            acknowledgements=acknowledgements_for_visit(
                case=case,
                action=data["action"],
                inspection=data["inspection"],
                acknowledgements=form.acknowledgements(),
            ),
            inspection=data["inspection"],
            request_key=data["request_key"] or None,
        )
    except REFUSALS as exc:
        return _refused(request, case, exc, act_form=form)
    case = case_get(user=request.user, pk=pk)
    messages.success(
        request, _("Done: the case is now “%(state)s”.") % {"state": case.get_state_display()}
    )
    return HttpResponseRedirect(reverse("cases:case_detail", args=[case.pk]))


@require_POST
@login_required
def case_pay_view(request, pk: int):
    case = case_get(user=request.user, pk=pk)
    form = CasePayForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, case, pay_form=form, error=_("Correct the form below."))
        return render(request, "renovation/case_detail.html", context, status=400)
    data = form.cleaned_data
    try:
        payment, _created = case_pay(
            user=request.user,
            case_id=case.pk,
            amount=data["amount"],
            paid_on=data["paid_on"],
            reference=data["reference"].strip(),
            opinion=data["opinion"].strip(),
            confirm=data["confirm"],
            request_key=data["request_key"] or None,
        )
    except REFUSALS as exc:
        return _refused(request, case, exc, pay_form=form)
    messages.success(
        request,
        _("Payment of %(amount)s yuan recorded (%(reference)s).")
        % {"amount": payment.amount, "reference": payment.reference},
    )
    return HttpResponseRedirect(reverse("cases:case_detail", args=[case.pk]))


@require_POST
@login_required
def case_batch_view(request):
    """One step on several cases, each checked on its own by the service: some may be done
    while others are refused. The results are shown once on the list (post/redirect/get)."""
    actions = batch_actions_for(user=request.user)
    form = CaseBatchForm(request.POST, actions=actions)
    if not actions:
        messages.error(request, _("Your role takes no steps on several cases at once."))
        return HttpResponseRedirect(_list_url())
    query = request.POST.get("query", "")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return HttpResponseRedirect(_list_url(query))
    data = form.cleaned_data
    action = data["action"]
    try:
        done = case_batch_act(
            user=request.user,
            action=action,
            case_ids=data["cases"],
            request_key=data["request_key"] or new_request_key(),
            opinion=data["opinion"].strip(),
            confirm=data["confirm"],
        )
    except REFUSALS as exc:
        # The batch's own input (its opinion, its confirmation): nothing was done.
        messages.error(request, str(exc.message))
        return HttpResponseRedirect(_list_url(query))
    results = [
        {
            "id": row.case_id,
            "url": reverse("cases:case_detail", args=[row.case_id]) if row.case else "",
            "household": row.case.house.household.head_name if row.case else "",
            "done": row.done,
            "message": str(row.message),
        }
        for row in done
    ]
    request.session[BATCH_RESULTS_KEY] = {
        "action": str(dict(actions).get(action, action)),
        "done": sum(1 for r in results if r["done"]),
        "refused": sum(1 for r in results if not r["done"]),
        "rows": results,
    }
    return HttpResponseRedirect(_list_url(query))
