"""What a builder gets while it makes one export: the parameters, where to write, the stamp
to print, and a progress counter that the /exports/ page reads.

A builder is a function `build(job: Job) -> None` (see reports.kinds) that writes the whole
file to `job.path`, streaming: rows come from the database in chunks (`.iterator()`), XLSX
in constant-memory mode, ZIPs entry by entry, PDFs one household at a time. It calls
`job.set_total()` once it knows how much there is and `job.advance()` as it goes.
"""

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone


@dataclass(frozen=True)
class Stamp:
    """What every page of an issued document carries, so it can be checked later."""

    number: str  # AJ-2026-000042
    issued_at: datetime.datetime
    chain_head: str  # the audit chain's newest hash when the document was made
    verify_url: str  # absolute URL of /verify/?number=…: the QR code on each PDF page


class JobCancelled(Exception):
    """The export row disappeared or was finished by another delivery of the same task."""


@dataclass
class Job:
    export: object  # reports.models.Export
    user: object
    params: dict
    path: Path  # the file to write (a temporary file; the service stores it)
    workdir: Path  # a temporary folder for anything else the builder needs
    stamp: Stamp
    # Progress is written at most this often, so counting costs nothing next to the rows.
    progress_every_s: float = 0.5
    _done: int = 0
    _last_write: float = field(default=0.0, repr=False)

    @property
    def language(self) -> str:
        return self.export.language

    def set_total(self, total: int | None, unit: str = "rows") -> None:
        from reports.models import Export

        self.export.total = total
        self.export.unit = unit
        Export.objects.filter(pk=self.export.pk).update(
            total=total, unit=unit, done=self._done, heartbeat_at=timezone.now()
        )

    def advance(self, n: int = 1, *, write: bool = True) -> None:
        """Count n more done; write the count now and then (write=False while the database
        connection is busy, e.g. streaming a COPY: flush() after)."""
        self._done += n
        if not write:
            return
        now = time.monotonic()
        if now - self._last_write >= self.progress_every_s:
            self._last_write = now
            self._write_progress()

    @property
    def done(self) -> int:
        return self._done

    def _write_progress(self) -> None:
        from reports.models import Export

        self.export.done = self._done
        Export.objects.filter(pk=self.export.pk).update(
            done=self._done, heartbeat_at=timezone.now()
        )

    def flush(self) -> None:
        self._write_progress()
