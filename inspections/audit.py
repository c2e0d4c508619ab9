"""The tamper-evident trail of case events: a hash chain over every transition and payment.

Each event's hash is SHA-256 over a canonical form of its own fields and the previous
event's hash. Editing an event changes its hash (which no longer matches what is stored,
nor the next event's prev_hash); deleting one leaves a gap between two events' hashes; and
ChainHead holds the newest hash, so removing the last events is seen too.

Appending locks the single ChainHead row: events from concurrent transactions line up in
one chain instead of forking it.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inspections.models import CaseEvent, ChainHead

GENESIS = "0" * 64


def _canonical(event: CaseEvent) -> bytes:
    at = event.at.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    body = {
        "case": event.case_id,
        "kind": event.kind,
        "from": event.from_state,
        "to": event.to_state,
        "actor": event.actor_id,
        "at": at,
        "reason": event.reason,
        "data": event.data,
        "request_key": event.request_key,
        "prev": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def event_hash(event: CaseEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


def _head_for_update() -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        ChainHead.objects.get_or_create(pk=1, defaults={"last_hash": GENESIS})
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


@transaction.atomic
def event_append(
    *,
    case,
    kind: str,
    from_state: str,
    to_state: str,
    actor,
    reason: str = "",
    data: dict | None = None,
    request_key: str | None = None,
    at: datetime.datetime | None = None,
) -> CaseEvent:
    """Append one event to the chain, inside the caller's transaction."""
    head = _head_for_update()
    event = CaseEvent(
        case=case,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        at=at or timezone.now(),
        reason=reason,
        data=data or {},
        request_key=request_key,
        prev_hash=head.last_hash,
    )
    # Round-trip the JSON the way the database will store it, so the hash is reproducible.
    event.data = json.loads(json.dumps(event.data, sort_keys=True, default=str))
    event.hash = event_hash(event)
    event.save()
    head.last_hash = event.hash
    head.last_event_id = event.pk
    head.save(update_fields=["last_hash", "last_event_id"])
    return event


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link: the event where the chain stops holding, and what is wrong."""

    event_id: int | None
    message: str


def verify_chain(*, batch_size: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walk every event in order: (events found intact before the break, the first break)."""
    prev = GENESIS
    checked = 0
    last_id = None
    for event in CaseEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.prev_hash != prev:
            if last_id is None:
                message = _(
                    "Event %(id)s should start the chain, but it records a previous event: "
                    "the events before it were deleted."
                ) % {"id": event.pk}
            else:
                message = _(
                    "Event %(id)s does not follow event %(previous)s: the hash it records for "
                    "the event before it does not match. An event between them was deleted, "
                    "or event %(previous)s was edited."
                ) % {"id": event.pk, "previous": last_id}
            return checked, ChainBreak(event.pk, message)
        if event_hash(event) != event.hash:
            return checked, ChainBreak(
                event.pk,
                _("Event %(id)s was edited: its content does not match its hash.")
                % {"id": event.pk},
            )
        prev = event.hash
        last_id = event.pk
        checked += 1
    head = ChainHead.objects.filter(pk=1).first()
    if head is None:
        if last_id is None:
            return checked, None  # no event was ever appended
        return checked, ChainBreak(
            last_id,
            _("The chain head is missing, though events exist up to event %(id)s: it was deleted.")
            % {"id": last_id},
        )
    if head.last_hash == prev:
        return checked, None
    if head.last_event_id is not None and head.last_event_id != last_id:
        if last_id is None:
            message = _(
                "There are no events, but the chain head records event %(head)s as the "
                "newest: the events were deleted."
            ) % {"head": head.last_event_id}
        else:
            message = _(
                "The chain ends at event %(id)s, but the chain head records event %(head)s "
                "as the newest: events at the end were deleted."
            ) % {"id": last_id, "head": head.last_event_id}
    else:
        message = _(
            "The chain head does not match event %(id)s, the newest event: event %(id)s or "
            "the head was edited."
        ) % {"id": last_id}
    return checked, ChainBreak(last_id, message)
