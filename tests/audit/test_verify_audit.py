"""manage.py verify_audit: the case events' hash chain holds, and tampering is found."""

import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection

from renovation.events import event_append, event_hash
from renovation.models import (
    BuildMode,
    CaseEvent,
    CaseEventKind,
    CaseState,
    ChainHead,
    RenovationCase,
    RenovationMethod,
)
from tests.inspections.factories import AppraisalFactory

pytestmark = pytest.mark.django_db


def make_case() -> RenovationCase:
    """A minimal case on a house graded D (written directly: the services are tested apart)."""
    appraisal = AppraisalFactory(grade="D", derived_grade="D")
    return RenovationCase.objects.create(
        house=appraisal.inspection.house,
        entry_appraisal=appraisal,
        entry_grade="D",
        method=RenovationMethod.REBUILD_SAME_SITE,
        build_mode=BuildMode.SELF_BUILT,
        household_size=3,
        planned_floor_area=Decimal("54.00"),
        subsidy_amount=Decimal("20000.00"),
        funding_year=2025,
        created_by=appraisal.inspection.inspector,
    )


STEPS = [
    (CaseEventKind.OPENED, "", CaseState.APPLIED, ""),
    (CaseEventKind.TRANSITION, CaseState.APPLIED, CaseState.VILLAGE_REVIEWED, "村委会议通过"),
    (CaseEventKind.TRANSITION, CaseState.VILLAGE_REVIEWED, CaseState.NOTICED, ""),
    (CaseEventKind.TRANSITION, CaseState.NOTICED, CaseState.WITHDRAWN, "Moved to a relative"),
]


@pytest.fixture
def events() -> list[CaseEvent]:
    """Four events of one case, each chained to the one before."""
    case = make_case()
    at = datetime.datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=datetime.UTC)
    return [
        event_append(
            case=case,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            actor=case.created_by,
            reason=reason,
            data={"step": index, "amount": "20000.00"},
            request_key=f"key-{index}",
            at=at + datetime.timedelta(days=index),
        )
        for index, (kind, from_state, to_state, reason) in enumerate(STEPS)
    ]


def verify() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def broken() -> tuple[str, str]:
    """The CommandError's message and what was written to stderr before it."""
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    return str(raised.value), err.getvalue()


def sql(statement: str, params: list) -> None:
    table = connection.ops.quote_name(CaseEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(statement.format(table=table), params)


def test_a_clean_chain_passes_and_says_how_many_events_were_checked(events):
    out, err = verify()

    assert out == "4 events checked: the audit chain is intact.\n"
    assert err == ""


def test_an_empty_trail_passes():
    out, _err = verify()

    assert out == "0 events checked: the audit chain is intact.\n"


def test_each_event_links_to_the_one_before_and_the_head_to_the_newest(events):
    assert events[0].prev_hash == "0" * 64
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    stored = CaseEvent.objects.order_by("id")
    assert [event_hash(e) for e in stored] == [e.hash for e in events]
    head = ChainHead.objects.get()
    assert (head.last_hash, head.last_event_id) == (events[-1].hash, events[-1].pk)


def test_a_reason_edited_with_raw_sql_is_found_at_that_event(events):
    sql("UPDATE {table} SET reason = %s WHERE id = %s", ["村委会议否决", events[1].pk])

    message, err = broken()

    assert message == f"Event {events[1].pk} was edited: its content does not match its hash."
    assert err == "1 event before the break is intact.\n"


def test_an_edit_whose_hash_was_recomputed_is_found_at_the_next_event(events):
    edited = CaseEvent.objects.get(pk=events[1].pk)
    edited.reason = "村委会议否决"
    sql(
        "UPDATE {table} SET reason = %s, hash = %s WHERE id = %s",
        [edited.reason, event_hash(edited), edited.pk],
    )

    message, err = broken()

    assert message == (
        f"Event {events[2].pk} does not follow event {events[1].pk}: the hash it records for "
        f"the event before it does not match. An event between them was deleted, or event "
        f"{events[1].pk} was edited."
    )
    assert err == "2 events before the break are intact.\n"


def test_an_event_deleted_in_the_middle_is_found_at_the_gap(events):
    sql("DELETE FROM {table} WHERE id = %s", [events[2].pk])

    message, err = broken()

    assert message == (
        f"Event {events[3].pk} does not follow event {events[1].pk}: the hash it records for "
        f"the event before it does not match. An event between them was deleted, or event "
        f"{events[1].pk} was edited."
    )
    assert err == "2 events before the break are intact.\n"


def test_the_first_event_deleted_is_found(events):
    sql("DELETE FROM {table} WHERE id = %s", [events[0].pk])

    message, _err = broken()

    assert message == (
        f"Event {events[1].pk} should start the chain, but it records a previous event: "
        "the events before it were deleted."
    )


def test_the_last_event_deleted_is_found_through_the_chain_head(events):
    sql("DELETE FROM {table} WHERE id = %s", [events[3].pk])

    message, err = broken()

    assert message == (
        f"The chain ends at event {events[2].pk}, but the chain head records event "
        f"{events[3].pk} as the newest: events at the end were deleted."
    )
    assert err == "3 events before the break are intact.\n"


def test_every_event_deleted_is_found_through_the_chain_head(events):
    sql("DELETE FROM {table}", [])

    message, _err = broken()

    assert message == (
        f"There are no events, but the chain head records event {events[3].pk} as the "
        "newest: the events were deleted."
    )


def test_the_newest_event_edited_and_rehashed_is_found_through_the_chain_head(events):
    edited = CaseEvent.objects.get(pk=events[3].pk)
    edited.reason = "Moved away"
    sql(
        "UPDATE {table} SET reason = %s, hash = %s WHERE id = %s",
        [edited.reason, event_hash(edited), edited.pk],
    )

    message, _err = broken()

    assert message == (
        f"The chain head does not match event {events[3].pk}, the newest event: "
        f"event {events[3].pk} or the head was edited."
    )


def test_a_deleted_chain_head_is_found(events):
    ChainHead.objects.all().delete()

    message, _err = broken()

    assert message == (
        f"The chain head is missing, though events exist up to event {events[3].pk}: "
        "it was deleted."
    )


def test_from_the_command_line_a_broken_chain_exits_with_status_1(events, capsys):
    sql("DELETE FROM {table} WHERE id = %s", [events[1].pk])

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "verify_audit"])

    assert exited.value.code == 1
    assert f"CommandError: Event {events[2].pk} does not follow event" in capsys.readouterr().err
