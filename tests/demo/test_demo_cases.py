"""seed_demo's renovation cases: every state, driven by the right users, with planted anomalies.

One seed of a small county is checked throughout, then seeded again to compare: seeding
costs seconds, so the checks share it. Photos are few: a small slot configuration (four
before-photos, one progress photo, one after-photo) keeps the photo demo quick.
"""

import datetime
import io
import re
from collections import defaultdict

import pytest

# shapely before anything loads Django's GEOS (see tests/conftest.py).
import shapely  # noqa: F401
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from audit.anomalies import AnomalyKind, anomaly_list
from audit.chain import verify_chain
from demo.registry import REFERENCE_DATE
from housing.models import FamilyMember, Household
from inspections.models import RequiredPhotoSlot
from renovation.models import CaseEvent, CaseEventKind, CaseState, Payment, RenovationCase
from renovation.rules import is_overdue

N = 150
SEED = 1
PHOTOGRAPHED = 16
PASSWORD = "demo-pass-for-tests-26"
SLOTS = [
    ("appraisal", "before", ["front", "left", "back", "interior"]),
    ("progress", "during", ["front"]),
    ("completion", "after", ["front"]),
]
# Who takes each step: the role of the event's actor.
ROLES = {
    "open": {"inspector"},
    "import": {"inspector"},
    "village_review": {"inspector"},
    "notice": {"township_official"},
    "township_check": {"township_official"},
    "county_approve": {"county_official"},
    "start_works": {"inspector"},
    "finish_works": {"inspector"},
    "pass_completion": {"county_official"},
    "fail_completion": {"county_official"},
    "reject": {"township_official"},
    "withdraw": {"township_official"},
    "pay": {"county_official"},
}


@pytest.fixture(autouse=True)
def _demo_settings(settings):
    settings.ANJU_DEMO_PASSWORD = PASSWORD


def seed() -> str:
    for kind, stage, angles in SLOTS:
        for angle in angles:
            RequiredPhotoSlot.objects.get_or_create(kind=kind, stage=stage, angle=angle)
    out = io.StringIO()
    call_command("seed_demo", stdout=out, households=N, seed=SEED, photos=PHOTOGRAPHED)
    return out.getvalue()


def digest() -> list:
    """The cases, payments, events and planted members, in an order free of database ids.
    Every time is the demo calendar's (the services' `at=`), not the clock's."""
    # Sorted in Python on every column: one household may have two cases in one year.
    cases = sorted(
        RenovationCase.objects.values_list(
            "house__household__archive_no",
            "state",
            "entry_grade",
            "method",
            "build_mode",
            "household_size",
            "planned_floor_area",
            "subsidy_amount",
            "funding_year",
            "batch",
            "notice_started_at",
            "completion_passed_at",
            "created_at",
            "paid_total",
            "closing_reason",
            "works_inspector__username",
        ),
        key=repr,
    )
    payments = sorted(
        Payment.objects.values_list("reference", "amount", "paid_on", "created_at"), key=repr
    )
    events = sorted(
        CaseEvent.objects.values_list(
            "case__house__household__archive_no",
            "case__funding_year",
            "kind",
            "from_state",
            "to_state",
            "actor__username",
            "reason",
            "at",
            "data__opinion",
        ),
        key=repr,
    )
    members = sorted(FamilyMember.objects.values_list("household__archive_no", "name", "id_number"))
    return [cases, payments, events, members]


def planted_of(out: str) -> dict[str, list[str]]:
    line = next(x for x in out.splitlines() if x.startswith("Planted anomalies"))
    body = line.removeprefix("Planted anomalies, to see in the auditor's worklist: ")
    labels = {str(label): code for code, label in AnomalyKind.choices}
    planted = {}
    for part in body.removesuffix(".").split("; "):
        label, numbers = part.rsplit(": ", 1)
        planted[labels[label]] = numbers.split(", ")
    return planted


class _Discard(Exception):
    pass


@pytest.mark.django_db
def test_seed_demo_drives_cases_through_every_state_with_each_planted_anomaly_and_again_the_same():
    try:
        with transaction.atomic():
            out = seed()
            first = digest()
            _check_the_demo(out)
            raise _Discard
    except _Discard:
        pass
    assert not RenovationCase.objects.exists()
    try:
        with transaction.atomic():
            seed()
            again = digest()
            raise _Discard
    except _Discard:
        pass

    assert again == first


def _check_the_demo(out: str) -> None:
    lines = out.splitlines()
    summary = re.fullmatch(
        r"Renovation cases in [\d.]+ s: (\d+) cases, (\d+) payments\. By state: (.*)\.",
        lines[3],
    )
    assert summary, lines[3]
    assert int(summary[1]) == RenovationCase.objects.count()
    assert int(summary[2]) == Payment.objects.count()
    assert lines[5].startswith("Demo logins")

    # Every state of the chain has a case.
    states = set(RenovationCase.objects.values_list("state", flat=True))
    assert states == set(CaseState.values)

    # Each step was taken by a user of the role whose step it is, with an opinion and the
    # official's confirmation (the imported opening has neither: no one took it here).
    steps = CaseEvent.objects.exclude(kind=CaseEventKind.ACKNOWLEDGE)
    for step, role, username, opinion, confirmed in steps.values_list(
        "data__step", "actor__role", "actor__username", "data__opinion", "data__confirmed"
    ):
        assert role in ROLES[step], (step, username)
        if step not in ("open", "import"):
            assert opinion and confirmed is True, (step, username)
    # The flags of the photos a step relied on were acknowledged by its official, with a
    # reason, before the step (same time, earlier in the chain).
    assert CaseEvent.objects.filter(kind=CaseEventKind.ACKNOWLEDGE).exists()
    for ack in CaseEvent.objects.filter(kind=CaseEventKind.ACKNOWLEDGE):
        step = ack.case.events.filter(id__gt=ack.pk, data__step=ack.data["for_step"]).first()
        assert step is not None and (step.actor_id, step.at) == (ack.actor_id, ack.at)
        assert ack.data["reason"]
    _check_the_timelines()
    # The demo users act in their township; the completion checks are the county's, with
    # separation of duties: `county` appraises, `county2` passes, `county` pays.
    actors = set(CaseEvent.objects.values_list("actor__username", flat=True))
    assert {"inspector", "township", "county", "county2"} <= actors
    for case in RenovationCase.objects.filter(state=CaseState.PAID):
        assert case.paid_total == case.subsidy_amount
        assert case.completion_inspection.inspector.username == "county"
        steps = case.events.exclude(kind=CaseEventKind.ACKNOWLEDGE).select_related("actor")
        by_step = {e.data["step"]: e.actor.username for e in steps}
        assert (by_step["pass_completion"], by_step["pay"]) == ("county2", "county")
        assert case.works_inspector.username.startswith("inspector")
        assert case.payments.count() in (1, 2)
    # Dates the rules read are on the demo's calendar, not the clock's.
    for case in RenovationCase.objects.exclude(notice_started_at=None):
        assert case.notice_started_at.date() <= REFERENCE_DATE
    assert max(CaseEvent.objects.values_list("at", flat=True)).date() <= REFERENCE_DATE
    passed = RenovationCase.objects.filter(state=CaseState.COMPLETION_PASSED)
    assert any(is_overdue(c, today=REFERENCE_DATE) for c in passed)
    assert any(not is_overdue(c, today=REFERENCE_DATE) and c.paid_total > 0 for c in passed)
    assert set(Payment.objects.values_list("paid_on__year", flat=True)) <= {2024, 2025}
    assert max(Payment.objects.values_list("paid_on", flat=True)) <= REFERENCE_DATE
    # A failed completion check sent one case back to works before it passed.
    failed = CaseEvent.objects.get(data__step="fail_completion")
    assert failed.reason.startswith("The roof drains")
    rejected = RenovationCase.objects.get(state=CaseState.REJECTED)
    assert rejected.closing_reason == (
        "The village review found a second house registered to the household."
    )

    # The auditor's worklist finds every planted anomaly on its household.
    planted = planted_of(out)
    assert list(planted) == AnomalyKind.values
    found = defaultdict(set)
    for anomaly in anomaly_list(user=User.objects.get(username="auditor")):
        found[anomaly.code].add(anomaly.household.archive_no)
    for code, numbers in planted.items():
        assert set(numbers) <= found[code], code
    # Planted in the ways the issue names.
    legacy = RenovationCase.objects.get(house__household__archive_no=planted["grade_not_cd"][0])
    assert legacy.entry_grade in ("A", "B")
    assert legacy.events.order_by("id")[0].reason == "Imported from the old system."
    repeat = planted["repeat_case"][0]
    assert sorted(
        RenovationCase.objects.filter(house__household__archive_no=repeat).values_list(
            "funding_year", "state"
        )
    ) == [(2024, CaseState.PAID), (2025, CaseState.APPLIED)]
    assert FamilyMember.objects.filter(
        household__archive_no=planted["missing_id"][0], id_number=""
    ).exists()
    assert Household.objects.filter(
        archive_no__in=planted["double_benefit"], poverty_relocation=True
    ).count() == len(planted["double_benefit"])

    # The hash chain is whole, and verify_audit says so.
    checked, broken = verify_chain()
    assert broken is None
    assert checked == CaseEvent.objects.count() > 5 * RenovationCase.objects.count() // 2
    audit = io.StringIO()
    call_command("verify_audit", stdout=audit)
    assert audit.getvalue().strip() == (f"{checked} events checked: the audit chain is intact.")


def _check_the_timelines() -> None:
    """For every demo case, the events are in time order, and each date the services set
    is its event's time: opened, notice, completion check passed, each payment."""
    cases = RenovationCase.objects.prefetch_related("events", "payments")
    for case in cases:
        events = sorted(case.events.all(), key=lambda e: e.pk)
        times = [e.at for e in events]
        assert times == sorted(times), case.pk
        assert events[0].kind == CaseEventKind.OPENED
        assert case.created_at == events[0].at, case.pk
        noticed = [e for e in events if e.data.get("step") == "notice"]
        if noticed:
            assert case.notice_started_at == noticed[-1].at, case.pk
        else:
            assert case.notice_started_at is None
        passed = [e for e in events if e.data.get("step") == "pass_completion"]
        if passed:
            assert case.completion_passed_at == passed[-1].at, case.pk
        else:
            assert case.completion_passed_at is None
        paid = {e.data["payment"]: e for e in events if e.kind == CaseEventKind.PAYMENT}
        for payment in case.payments.all():
            event = paid[payment.pk]
            assert payment.created_at == event.at
            assert timezone.localtime(event.at).date() == payment.paid_on, case.pk
        # The steps come in the chain's order, on the demo's calendar.
        by_step = {e.data.get("step"): e.at for e in events}
        order = ["open", "village_review", "notice", "township_check", "county_approve"]
        reached = [by_step[s] for s in order if s in by_step]
        assert reached == sorted(reached)
        if "township_check" in by_step:
            notice_days = datetime.timedelta(days=settings.ANJU_NOTICE_DAYS)
            assert by_step["township_check"] >= by_step["notice"] + notice_days


@pytest.mark.django_db
def test_no_cases_makes_photos_but_no_cases_and_no_township_officials():
    RequiredPhotoSlot.objects.create(kind="appraisal", stage="before", angle="front")
    out = io.StringIO()
    call_command("seed_demo", stdout=out, households=60, seed=3, photos=3, no_cases=True)

    assert not RenovationCase.objects.exists()
    assert not User.objects.filter(username__startswith="township-").exists()
    assert out.getvalue().splitlines()[3].startswith("Demo logins")


@pytest.mark.django_db
def test_a_taken_township_official_username_is_refused(make_user):
    make_user(Role.AUDITOR, username="township-101")

    with pytest.raises(CommandError) as caught:
        call_command("seed_demo", stdout=io.StringIO(), households=60, seed=3, photos=3)

    assert str(caught.value) == (
        "The demo users need these usernames, which are already taken: township-101. "
        "Rename or delete those users first."
    )
    assert not Household.objects.exists()
