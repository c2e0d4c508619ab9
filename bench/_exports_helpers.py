"""Helpers of bench/bench_exports.py that need Django (imported in its worker processes only).

- photo_household_create: one household of the demo county with camera-size photos, sent
  through the real photo pipeline (inspection_submit, photo_upload, then photo_process, which
  the eager Celery task runs at once), so that its display copies are the real ones.
- rss_kb / peak_rss_kb: the process's resident memory now and its high-water mark.
- RssSampler: wraps reports.jobs.Job.advance to note (done, VmRSS, seconds) as a job goes,
  without changing what the job does.
"""

import datetime
import random
import resource
import time
import uuid

PHOTO_SIZE = (4000, 3000)  # 12 MP, what a phone's main camera saves
# Sensor-like noise on the upscaled drawing, so a JPEG at the demo's quality weighs what a
# phone photo does (~3 MB) instead of the ~100 kB a flat drawing compresses to.
NOISE_SIGMA = 10.0
BENCH_NOTE = "bench_exports: camera-size photos"


def rss_kb() -> int:
    """VmRSS of this process, in kB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_rss_kb() -> int:
    """ru_maxrss of this process, in kB (Linux): the most it ever held."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class RssSampler:
    """Notes (done, VmRSS kB, seconds since start) each time a job advances, at most every
    `every_s`, and on the first advance. Wraps Job.advance; restores it on exit."""

    def __init__(self, every_s: float = 0.5):
        self.every_s = every_s
        self.samples: list[tuple[int, int, float]] = []
        self._original = None
        self._started = 0.0
        self._last = -1e9

    def __enter__(self):
        from reports.jobs import Job

        self._original = Job.advance
        self._started = time.perf_counter()
        sampler = self

        def advance(job, *args, **kwargs):
            sampler._original(job, *args, **kwargs)
            now = time.perf_counter()
            if now - sampler._last >= sampler.every_s or not sampler.samples:
                sampler._last = now
                sampler.samples.append((job.done, rss_kb(), now - sampler._started))

        Job.advance = advance
        return self

    def __exit__(self, *exc):
        from reports.jobs import Job

        Job.advance = self._original
        return False


def camera_jpeg(image, *, rng, taken_at, gps, accuracy, camera) -> bytes:
    """A drawn 800×600 picture as a 12 MP phone JPEG: upscaled, with sensor noise, saved
    by demo.pictures.jpeg_with_exif (EXIF time, GPS, make and model)."""
    import numpy as np
    from PIL import Image

    from demo.pictures import jpeg_with_exif

    big = image.resize(PHOTO_SIZE, Image.BICUBIC)
    pixels = np.asarray(big, dtype=np.int16)
    height, width = pixels.shape[:2]
    luma = rng.normal(0.0, NOISE_SIGMA, size=(height, width, 1)).astype(np.int16)
    chroma = rng.normal(0.0, NOISE_SIGMA / 2, size=pixels.shape).astype(np.int16)
    noisy = np.clip(pixels + luma + chroma, 0, 255).astype(np.uint8)
    return jpeg_with_exif(
        Image.fromarray(noisy), taken_at=taken_at, gps=gps, accuracy=accuracy, camera=camera
    )


def photo_household_create(*, township: str, photos: int, seed: int) -> dict:
    """`photos` camera-size photos of one household of `township` that has none, in two
    visits of the demo inspector of that township: a safety appraisal (before the works)
    and a works-progress visit (during), half each, over the angles in turn. Through the
    real services; returns what was made."""
    import math

    import numpy as np
    from django.core.files.base import ContentFile

    from accounts.models import User
    from demo.evidence import DEMO_INSPECTOR, PHONES, appraisal_payload
    from demo.pictures import ZONE, draw_photo, house_look, offset_point
    from demo.registry import REFERENCE_DATE
    from housing.models import Household
    from inspections.grading import active_rule
    from inspections.models import InspectionKind, Photo, PhotoAngle, PhotoStage, PhotoStatus
    from inspections.photos import photo_upload
    from inspections.services import inspection_submit

    username, inspector_township = DEMO_INSPECTOR
    if township != inspector_township:
        raise ValueError(f"the demo inspector covers {inspector_township}, not {township}")
    inspector = User.objects.get(username=username)
    household = (
        Household.objects.filter(
            village__code__startswith=township,
            location__isnull=False,
            houses__is_current=True,
        )
        .exclude(houses__inspections__isnull=False)
        .select_related("village")
        .order_by("archive_no")
        .first()
    )
    if household is None:
        raise RuntimeError(f"no household of {township} without inspections")
    house = household.current_house
    rnd = random.Random(f"bench-exports:{seed}:{household.archive_no}")
    rng = np.random.default_rng(seed)
    look = house_look(rnd, house.storeys or 1)
    camera = rnd.choice(PHONES)
    lon, lat = household.location.x, household.location.y
    grade = house.safety_grade if house.safety_grade in ("A", "B", "C", "D") else "C"
    angles = [a for a in PhotoAngle.values if a != PhotoAngle.OTHER]
    visits = [
        (InspectionKind.APPRAISAL, PhotoStage.BEFORE, photos - photos // 2, 60),
        (InspectionKind.PROGRESS, PhotoStage.DURING, photos // 2, 20),
    ]
    made, original_bytes, started = [], 0, time.perf_counter()
    day = REFERENCE_DATE - datetime.timedelta(days=90)
    for kind, stage, count, days_later in visits:
        day = day + datetime.timedelta(days=days_later)
        start = datetime.datetime.combine(day, datetime.time(9, 0), tzinfo=ZONE)
        end = start + datetime.timedelta(minutes=20 + 3 * count)
        inspection, _created = inspection_submit(
            user=inspector,
            client_uuid=uuid.UUID(int=rnd.getrandbits(128), version=4),
            household=household,
            kind=kind,
            started_at=start,
            ended_at=end,
            location=offset_point(lon, lat, metres=8.0, bearing=1.0),
            accuracy=6.0,
            notes=BENCH_NOTE,
            appraisal=(
                appraisal_payload(grade=grade, rnd=rnd, rule=active_rule())
                if kind == InspectionKind.APPRAISAL
                else None
            ),
        )
        for index in range(count):
            angle = angles[index % len(angles)]
            taken = start + (end - start) * (index + 1) / (count + 1)
            gps = offset_point(
                lon, lat, metres=rnd.uniform(3, 30), bearing=rnd.uniform(0, 2 * math.pi)
            )
            image = draw_photo(
                rnd=rnd, look=look, stage=stage, angle=angle, doorplate=household.archive_no[-4:]
            )
            data = camera_jpeg(image, rng=rng, taken_at=taken, gps=gps, accuracy=5.0, camera=camera)
            original_bytes += len(data)
            # Outside a transaction photo_upload's on_commit runs the (eager) processing task
            # at once: the display copy and thumbnail exist when it returns.
            photo, _created = photo_upload(
                user=inspector,
                inspection=inspection,
                client_uuid=uuid.UUID(int=rnd.getrandbits(128), version=4),
                stage=stage,
                angle=angle,
                file=ContentFile(data, name=f"IMG_{len(made):04d}.jpg"),
            )
            made.append(photo.pk)
    ready = Photo.objects.filter(pk__in=made, status=PhotoStatus.READY).exclude(display="")
    if ready.count() != len(made):
        raise RuntimeError(f"only {ready.count()} of {len(made)} bench photos were processed")
    display_bytes = sum(
        ready.model.display.field.storage.size(name)
        for name in ready.values_list("display", flat=True)
    )
    return {
        "household": household.pk,
        "archive_no": household.archive_no,
        "photos": len(made),
        "original_mb": original_bytes / 1e6,
        "display_mb": display_bytes / 1e6,
        "seconds": time.perf_counter() - started,
    }


def jpeg_sizes(household_id: int) -> dict:
    """Sizes of the household's photo files (originals and display copies), from storage."""
    from inspections.models import Photo

    photos = Photo.objects.filter(inspection__house__household_id=household_id)
    storage = Photo._meta.get_field("original").storage
    originals = [storage.size(p.original.name) for p in photos]
    displays = [storage.size(p.display.name) for p in photos if p.display]
    widths = sorted({(p.width, p.height) for p in photos})
    return {
        "photos": len(originals),
        "original_mb": sum(originals) / 1e6,
        "display_mb": sum(displays) / 1e6,
        "pixels": widths,
    }


def csv_copy_deadlocks(*, username: str, timeout_s: float = 15.0) -> bool:
    """Whether reports.tabular.write_csv_query hangs: a one-row COPY with a real Job, in a
    thread of its own (its own database connection), given `timeout_s` to finish.

    The hang seen: Job.advance writes the progress (an UPDATE of the export row) through
    Django's connection while that connection is inside `cursor.copy(...)`; psycopg's
    connection lock is held by the COPY, so the UPDATE waits for it forever.
    """
    import tempfile
    import threading
    from pathlib import Path
    from types import SimpleNamespace

    from django.db import connection

    from accounts.models import User
    from reports.jobs import Job
    from reports.tabular import Column, write_csv_query

    finished = threading.Event()

    def probe():
        try:
            with tempfile.TemporaryDirectory(prefix="anju-bench-probe-") as tmp:
                job = Job(
                    export=SimpleNamespace(pk=-1, language="zh-hans", total=None, unit="", done=0),
                    user=None,
                    params={},
                    path=Path(tmp) / "probe.csv",
                    workdir=Path(tmp),
                    stamp=None,
                )
                rows = User.objects.filter(username=username).values_list("pk")
                statement = rows.query.sql_with_params()
                write_csv_query(job.path, [Column("id", "id", "number")], statement, job)
            finished.set()
        finally:
            if finished.is_set():
                connection.close()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not finished.is_set()


class DeferredCsvProgress:
    """The bench's workaround for that hang: while write_csv_query runs, the job's progress
    is only counted (no UPDATE through the connection that is in COPY); it is written once
    the COPY is over. Everything else is the shipped code."""

    def __enter__(self):
        import reports.ledgers
        import reports.tabular

        self._modules = (reports.tabular, reports.ledgers)
        self._original = reports.tabular.write_csv_query
        original = self._original

        def write_csv_query(path, columns, rows, job):
            every, last = job.progress_every_s, job._last_write
            job.progress_every_s = float("inf")
            job._last_write = time.monotonic()
            try:
                return original(path, columns, rows, job)
            finally:
                job.progress_every_s, job._last_write = every, last
                job.flush()

        for module in self._modules:
            module.write_csv_query = write_csv_query
        return self

    def __exit__(self, *exc):
        for module in self._modules:
            module.write_csv_query = self._original
        return False
