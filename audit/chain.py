"""Verifying the tamper-evident trail of case events (renovation.events appends to it).

Walks the chain in order and names the first broken link: an edited event (its content no
longer matches its hash), a deleted one (the next event's previous hash does not match) or
events removed at the end (the chain head records a newer event).
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from renovation.events import GENESIS, event_hash
from renovation.models import CaseEvent, ChainHead


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
