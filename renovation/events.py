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

from django.db import transaction
from django.utils import timezone

from renovation.models import CaseEvent, ChainHead

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


@transaction.atomic(savepoint=False)  # the caller's transaction: no savepoint of its own
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
