"""Evidence checks on a processed photo: where, when, and whether it was seen before.

Each check gives flags ``{"code", "message", "params", "detail"}`` (codes from PhotoFlag;
the message, worded with its params in the reader's language by ``flag_detail``, states the
figures; see "wording" below). Flags never block anything: an official reads them and decides.

A flag about a pair of photos (duplicate, near-duplicate) also carries ``other`` (the other
photo's storage key). The photo being processed gets the flag, and the photo it matches gets
its side of the pair (marked ``from_other``): an auditor who opens either household's file
must learn that the picture is shared, and which one was uploaded first is no proof of which
is genuine (the dates in the details say the order). For an earlier stage of the same house,
only the later-stage photo is flagged ("the after photo looks like the before photo"),
whichever was uploaded or processed first.
"""

import datetime
import functools
import itertools
import math

from django.conf import settings
from django.contrib.gis.db.models.functions import Distance
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Func, IntegerField, Value
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from housing.dbsettings import local_settings
from housing.history import CHANGED, history_snapshot
from housing.models import Household
from inspections import imaging
from inspections.models import Photo, PhotoAngle, PhotoFlag, PhotoStage

# A phone clock a little ahead of the server's is not a photo "from the future".
CLOCK_SKEW = datetime.timedelta(minutes=2)
# At most this many pair flags (per code) on one photo: the first few name the pattern.
MAX_PAIR_FLAGS = 5
STAGE_ORDER = {PhotoStage.BEFORE: 0, PhotoStage.DURING: 1, PhotoStage.AFTER: 2}
HASH_BITS = 64


# --- near-duplicate lookup (multi-index hashing) -------------------------------------------


@functools.cache
def _band_masks(width: int, radius: int) -> tuple[int, ...]:
    """XOR masks of every ``width``-bit pattern with at most ``radius`` bits set, 0 first."""
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(width), r):
            masks.append(sum(1 << bit for bit in bits))
    return tuple(masks)


def band_neighbours(value: int, radius: int, width: int) -> list[int]:
    """Every ``width``-bit value within Hamming distance ``radius`` of ``value``, itself first."""
    return [value ^ mask for mask in _band_masks(width, radius)]


def band_probes(phash: int, max_distance: int) -> list[tuple[int, list[int]]]:
    """(band number, the values to look up in its index) for each band of ``phash``.

    Pigeonhole: if two hashes differ in at most d bits, their bands share those d
    differences, so some band differs in at most d // (number of bands) bits.
    """
    radius = max(0, max_distance) // len(imaging.HASH_BAND_BITS)
    return [
        (i, band_neighbours(band, radius, width))
        for i, (band, width) in enumerate(
            zip(imaging.hash_bands(phash), imaging.HASH_BAND_BITS, strict=True)
        )
    ]


class HammingDistance(Func):
    """Bits that differ between a BIGINT hash column and a hash (PostgreSQL 14+ bit_count).

    The XOR is cast to bit(64), two's complement, so the signed storage counts the same bits
    as the unsigned hash.
    """

    template = "bit_count(CAST(%(expressions)s AS bit(64)))"
    output_field = IntegerField()

    def __init__(self, column: str, value: int):
        signed = Value(imaging.to_signed64(value), output_field=BigIntegerField())
        super().__init__(F(column).bitxor(signed))


def hamming_in_sql() -> bool:
    """Whether the database counts bits itself (bit_count, PostgreSQL 14+)."""
    return connection.vendor == "postgresql" and connection.pg_version >= 140000


def near_duplicates(
    *, phash: int, max_distance: int, exclude_photo_id=None, queryset=None
) -> list[tuple[int, int]]:
    """(photo_id, distance) of stored photos whose pHash is within ``max_distance`` bits.

    Nearest first. ``phash`` may be signed (as stored) or unsigned.

    Pigeonhole: if two 64-bit hashes differ in at most d bits, the three bands (21, 21 and
    22 bits) share those d differences, so some band differs in at most d // 3 bits. Each
    band probes its index with every value that close (232 values for d = 8), so the lookup
    reads about a hundred index entries per band at a million photos instead of every
    stored hash. On PostgreSQL the exact distance is checked
    in the same index-only scans (bit_count over the index's phash column), so only the
    matches come back, not the thousands of candidates that share a band at a million
    photos; elsewhere (SpatiaLite) the candidates are checked here.
    """
    if queryset is None and hamming_in_sql():
        rows = _matches_in_sql(phash, max_distance)
    else:
        rows = _candidates(phash, max_distance, queryset)
    seen = set() if exclude_photo_id is None else {exclude_photo_id}
    found = []
    for pk, distance in rows:
        if pk in seen or distance is None or distance > max_distance:
            continue
        seen.add(pk)
        found.append((pk, distance))
    found.sort(key=lambda item: (item[1], item[0]))
    return found


def _candidates(phash: int, max_distance: int, queryset) -> list[tuple[int, int]]:
    """(photo_id, distance) of the photos that share a band close enough (ORM)."""
    # order_by(): Photo's default ordering would join the inspection and sort every candidate.
    base = (queryset if queryset is not None else Photo.objects.all()).order_by()
    in_sql = hamming_in_sql()
    if in_sql:
        base = base.annotate(distance=HammingDistance("phash", phash)).filter(
            distance__lte=max_distance
        )
    # One probe per band, UNION ALL: each is an index-only scan of its covering index
    # (band, phash, id); OR-ing them instead makes the planner fetch every candidate row.
    probes = [
        base.filter(**{f"phash_band{i}__in": values}).values_list(
            "pk", "distance" if in_sql else "phash"
        )
        for i, values in band_probes(phash, max_distance)
    ]
    rows = probes[0].union(*probes[1:], all=True)
    if in_sql:
        return list(rows)
    return [(pk, None if other is None else imaging.hamming(phash, other)) for pk, other in rows]


def _matches_in_sql(phash: int, max_distance: int) -> list[tuple[int, int]]:
    """The same probes as _candidates with the distance checked in them, as one statement.

    Written out rather than composed with the ORM: at a few milliseconds per lookup, building
    three filtered querysets and their union costs about as much as running them, and
    ``= ANY(array)`` sends one parameter per band instead of 232. Parallel workers are
    switched off for the statement: the planner picks a parallel append of the three scans,
    and starting the workers takes longer than the scans (3x the time, measured).
    """
    quote = connection.ops.quote_name
    table = quote(Photo._meta.db_table)
    distance = f"bit_count(CAST(({quote('phash')} # %s) AS bit(64)))"
    probe = (
        f"SELECT {quote('id')}, {distance} FROM {table} "
        f"WHERE {{band}} = ANY(%s) AND {distance} <= %s"
    )
    signed = imaging.to_signed64(phash)
    sql, params = [], []
    for i, values in band_probes(phash, max_distance):
        sql.append(probe.format(band=quote(f"phash_band{i}")))
        params += [signed, values, signed, max_distance]
    with (
        transaction.atomic(savepoint=False),
        connection.cursor() as cursor,
        local_settings(cursor, {"max_parallel_workers_per_gather": 0}),
    ):
        cursor.execute(" UNION ALL ".join(sql), params)
        return cursor.fetchall()


# --- wording ---------------------------------------------------------------------------------
#
# A flag stores its sentence untranslated ("message", marked with gettext_noop) and the raw
# values it names ("params": numbers, ISO times, durations in seconds, stage/angle codes), and
# is worded in the reader's language when it is shown (flag_detail). "detail" keeps the
# sentence as worded when the flag was raised, in the site's language, for readers without one.

# Params that are worded rather than shown as they are.
_NUMBER_PARAMS = {"distance", "limit", "accuracy"}
_TIME_PARAMS = {"taken", "received", "start", "end", "date"}
_DURATION_PARAMS = {"ahead", "gap"}  # seconds


def _number(value) -> str:
    return formats.number_format(round(value), decimal_pos=0, force_grouping=True)


def _when(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _duration(delta: datetime.timedelta) -> str:
    minutes = max(1, math.ceil(abs(delta.total_seconds()) / 60))
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    days, hours = divmod(hours, 24)
    return _("%(days)s d %(hours)s h") % {"days": _number(days), "hours": hours}


def _worded(key: str, value):
    if value is None:
        return ""
    if key == "stage":
        return PhotoStage(value).label
    if key == "angle":
        return PhotoAngle(value).label
    if key in _NUMBER_PARAMS:
        return _number(value)
    if key in _TIME_PARAMS:
        return _when(datetime.datetime.fromisoformat(value))
    if key in _DURATION_PARAMS:
        return _duration(datetime.timedelta(seconds=value))
    return value


def flag_detail(flag: dict) -> str:
    """The flag's particulars in the active language (falls back to the stored wording)."""
    message, params = flag.get("message"), flag.get("params")
    if not message or params is None:
        return flag.get("detail", "")
    try:
        return _(message) % {key: _worded(key, value) for key, value in params.items()}
    except (KeyError, ValueError, TypeError):
        # A message whose wording changed since the flag was stored: the stored sentence.
        return flag.get("detail", "")


def _flag(code, message: str, params: dict | None = None, **extra) -> dict:
    params = params or {}
    flag = {"code": str(code), "message": message, "params": params, **extra}
    flag["detail"] = flag_detail(flag)
    return flag


def _slot(photo: Photo) -> dict:
    return {
        "stage": photo.stage,
        "angle": photo.angle,
        "date": photo.created_at.isoformat(),
        "archive_no": photo.inspection.house.household.archive_no,
    }


# --- the checks ------------------------------------------------------------------------------


def _gps_flags(photo: Photo) -> list[dict]:
    if photo.gps is None:
        return [
            _flag(
                PhotoFlag.NO_GPS,
                gettext_noop("The photo carries no GPS position in its EXIF data."),
            )
        ]
    household = photo.inspection.house.household
    if household.location is None:
        return []  # nothing to measure against; the household file shows the missing location
    # Geodesic distance on the WGS84 ellipsoid, computed by the database.
    distance = (
        Household.objects.filter(pk=household.pk)
        .annotate(d=Distance("location", photo.gps, spheroid=True))
        .values_list("d", flat=True)
        .get()
        .m
    )
    limit = settings.ANJU_PHOTO_MAX_DISTANCE_M
    if distance <= limit:
        return []
    params = {"distance": distance, "limit": limit}
    if photo.gps_accuracy is not None:
        params["accuracy"] = photo.gps_accuracy
        message = gettext_noop(
            "GPS is %(distance)s m from the house (limit %(limit)s m; GPS accuracy %(accuracy)s m)."
        )
    else:
        message = gettext_noop("GPS is %(distance)s m from the house (limit %(limit)s m).")
    return [_flag(PhotoFlag.FAR_FROM_HOUSE, message, params, distance_m=round(distance, 1))]


def _time_flags(photo: Photo) -> list[dict]:
    if photo.taken_at is None:
        return [
            _flag(
                PhotoFlag.NO_TIME,
                gettext_noop("The photo carries no capture time (EXIF DateTimeOriginal)."),
            )
        ]
    taken = photo.taken_at
    received = photo.created_at or timezone.now()
    if taken > received + CLOCK_SKEW:
        # Also outside the window, but "in the future" says more: a clock was set.
        return [
            _flag(
                PhotoFlag.IN_FUTURE,
                gettext_noop(
                    "Taken at %(taken)s, %(ahead)s after the server received it (%(received)s)."
                ),
                {
                    "taken": taken.isoformat(),
                    "ahead": (taken - received).total_seconds(),
                    "received": received.isoformat(),
                },
            )
        ]
    inspection = photo.inspection
    tolerance = datetime.timedelta(minutes=settings.ANJU_PHOTO_TIME_TOLERANCE_MIN)
    params = {"taken": taken.isoformat(), "tolerance": settings.ANJU_PHOTO_TIME_TOLERANCE_MIN}
    if taken < inspection.started_at - tolerance:
        params.update(
            gap=(inspection.started_at - taken).total_seconds(),
            start=inspection.started_at.isoformat(),
        )
        message = gettext_noop(
            "Taken at %(taken)s, %(gap)s before the inspection started at %(start)s "
            "(tolerance %(tolerance)s min)."
        )
        return [_flag(PhotoFlag.OUTSIDE_WINDOW, message, params)]
    if taken > inspection.ended_at + tolerance:
        params.update(
            gap=(taken - inspection.ended_at).total_seconds(),
            end=inspection.ended_at.isoformat(),
        )
        message = gettext_noop(
            "Taken at %(taken)s, %(gap)s after the inspection ended at %(end)s "
            "(tolerance %(tolerance)s min)."
        )
        return [_flag(PhotoFlag.OUTSIDE_WINDOW, message, params)]
    return []


def _matches(photo: Photo) -> list[tuple[Photo, int | None]]:
    """Other photos that are the same file (distance None) or look the same (distance)."""
    cached = getattr(photo, "_evidence_matches", None)
    if cached is not None:
        return cached
    related = Photo.objects.select_related("inspection__house__household")
    same_file = list(
        related.filter(sha256=photo.sha256)
        .exclude(pk=photo.pk)
        .order_by("pk")[: MAX_PAIR_FLAGS * 4]
    )
    matches = [(other, None) for other in same_file]
    if photo.phash is not None:
        near = near_duplicates(
            phash=photo.phash,
            max_distance=settings.ANJU_PHASH_MAX_DISTANCE,
            exclude_photo_id=photo.pk,
        )
        skip = {other.pk for other in same_file}
        near = [(pk, d) for pk, d in near if pk not in skip][: MAX_PAIR_FLAGS * 4]
        by_pk = related.in_bulk([pk for pk, _d in near])
        matches += [(by_pk[pk], d) for pk, d in near if pk in by_pk]
    photo._evidence_matches = matches
    return matches


def matched_photo_ids(*, photo: Photo) -> list[int]:
    """Ids of the other photos this one duplicates or nearly duplicates."""
    return [other.pk for other, _distance in _matches(photo)]


def _pair_flag(subject: Photo, other: Photo, distance: int | None) -> dict | None:
    """The flag ``subject`` gets for matching ``other`` (same file if distance is None).

    Symmetric wording: the same function gives the new photo its flag and the matched photo
    its counterpart, and the upload dates in the detail say which came first.
    """
    params = _slot(other)
    params.update(distance=distance, limit=settings.ANJU_PHASH_MAX_DISTANCE)
    same_household = other.inspection.house.household_id == subject.inspection.house.household_id
    if distance is None:
        code = PhotoFlag.DUPLICATE
        if same_household:
            message = gettext_noop(
                "Same file as the %(stage)s · %(angle)s photo of this household uploaded %(date)s."
            )
        else:
            message = gettext_noop(
                "Same file as the %(stage)s · %(angle)s photo of household %(archive_no)s "
                "uploaded %(date)s."
            )
    elif not same_household:
        code = PhotoFlag.NEAR_DUPLICATE_OTHER_HOUSEHOLD
        message = gettext_noop(
            "Looks like the %(stage)s · %(angle)s photo of household %(archive_no)s "
            "uploaded %(date)s (hash distance %(distance)s of 64 bits, limit %(limit)s)."
        )
    elif STAGE_ORDER[other.stage] < STAGE_ORDER[subject.stage]:
        # Only the later stage is suspect: an "after" photo that looks like "before".
        code = PhotoFlag.NEAR_DUPLICATE_EARLIER_STAGE
        message = gettext_noop(
            "Looks like the %(stage)s · %(angle)s photo of this house uploaded %(date)s "
            "(hash distance %(distance)s of 64 bits, limit %(limit)s)."
        )
    else:
        return None  # the same stage of the same house: two shots of one scene are normal
    return _flag(code, message, params, other=str(other.key))


def _pair_flags(photo: Photo) -> list[dict]:
    flags = [_pair_flag(photo, other, distance) for other, distance in _matches(photo)]
    return _cap([flag for flag in flags if flag is not None])


def _cap(flags: list[dict]) -> list[dict]:
    counts: dict[str, int] = {}
    kept = []
    for flag in flags:
        counts[flag["code"]] = counts.get(flag["code"], 0) + 1
        if counts[flag["code"]] <= MAX_PAIR_FLAGS:
            kept.append(flag)
    return kept


def flags_for(*, photo: Photo) -> list[dict]:
    """The evidence flags of a processed photo (its own checks; nothing is saved)."""
    return _gps_flags(photo) + _time_flags(photo) + _pair_flags(photo)


def flag_matched_photos(*, photo: Photo) -> None:
    """Give each photo this one matches its side of the pair flag (see the module doc).

    Those flags are marked ``from_other``: the matched photo's own re-processing keeps them.
    The caller holds the row locks (photo_process locks them all at once, in id order);
    flags are merged, so concurrent runs and re-runs neither lose nor repeat a flag.
    """
    additions: dict[int, list[dict]] = {}
    for other, distance in _matches(photo):
        flag = _pair_flag(other, photo, distance)
        if flag is not None:
            flag["from_other"] = True
            additions.setdefault(other.pk, []).append(flag)
    for pk in sorted(additions):
        other = Photo.objects.select_for_update().filter(pk=pk).first()
        if other is None:
            continue
        merged = merge_flags(other.flags, kept=[], extra=additions[pk])
        if merged != other.flags:
            Photo.objects.filter(pk=pk).update(flags=merged)
            history_snapshot(Photo, [pk], history_type=CHANGED, reason="photo_process")


def _pair_key(flag: dict):
    return (flag.get("code"), flag.get("other"))


def merge_flags(own: list[dict], *, kept: list[dict], extra: list[dict] = ()) -> list[dict]:
    """A photo's own flags, plus the ``from_other`` flags already on it (kept) and ``extra``.

    A pair flag already present (same code, same other photo) is not repeated: the photo's
    own flag wins over one another photo added.
    """
    result = list(own)
    seen = {_pair_key(flag) for flag in result if flag.get("other")}
    for flag in [f for f in kept if f.get("from_other")] + list(extra):
        if flag.get("other") and _pair_key(flag) in seen:
            continue
        if not flag.get("other") and flag in result:
            continue
        result.append(flag)
        if flag.get("other"):
            seen.add(_pair_key(flag))
    return _cap_later(result)


def _cap_later(flags: list[dict]) -> list[dict]:
    """At most MAX_PAIR_FLAGS flags per code added by other photos."""
    counts: dict[str, int] = {}
    kept = []
    for flag in flags:
        if flag.get("from_other"):
            counts[flag["code"]] = counts.get(flag["code"], 0) + 1
            if counts[flag["code"]] > MAX_PAIR_FLAGS:
                continue
        kept.append(flag)
    return kept
