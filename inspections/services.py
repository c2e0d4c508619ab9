"""Every write of inspections and appraisals goes through here.

A phone may send the same record many times (an offline queue replays until the server
answers), so a submission is idempotent by its client UUID: the first one is stored, a
repeat with the same content returns that row, and a repeat with different content is a
conflict. Concurrent repeats are settled by the unique constraint on client_uuid (insert,
and on IntegrityError re-read), never by checking first and inserting after.
"""

import datetime
import hashlib
import json
import math
import uuid

from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from housing.bounds import clock_skew
from housing.models import House, Household
from housing.selectors import household_get
from inspections.errors import IdempotencyConflict, InspectionInvalid, InspectionRefused
from inspections.grading import active_rule, derive_grade
from inspections.models import (
    MEMBERS,
    Appraisal,
    Inspection,
    InspectionKind,
    MemberRating,
    SiteHazard,
)
from inspections.permissions import can_create_inspection

MEMBER_NAMES = [name for name, _label in MEMBERS]
GRADES = ["A", "B", "C", "D"]
HAZARD_ORDER = list(SiteHazard.values)


def payload_digest(payload: dict) -> str:
    """SHA-256 of a canonical JSON of the record: sorted keys, no spaces, UTF-8."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _utc_iso(value: datetime.datetime) -> str:
    # The same instant written with another offset is the same record.
    return value.astimezone(datetime.UTC).isoformat()


def _check_time(name: str, value, errors: dict) -> None:
    if not isinstance(value, datetime.datetime):
        errors[name] = [
            _("A date and time in ISO 8601 is required, e.g. 2026-04-01T09:30:00+08:00.")
        ]
    elif timezone.is_naive(value):
        errors[name] = [
            _("The time needs a UTC offset (e.g. +08:00), or a phone's clock cannot be trusted.")
        ]
    elif value > timezone.now() + clock_skew():  # phones' clocks drift: ANJU_CLOCK_SKEW_MIN
        errors[name] = [_("The time is in the future; check the phone's clock.")]


def _clean_appraisal(kind: str, appraisal, errors: dict) -> dict | None:
    """The appraisal with its hazards normalized, or None; adds to `errors` what is wrong."""
    if kind == InspectionKind.PROGRESS:
        if appraisal is not None:
            errors["appraisal"] = [_("A works-progress visit does not record an appraisal.")]
        return None
    if appraisal is None:
        if kind == InspectionKind.APPRAISAL:
            errors["appraisal"] = [_("A safety appraisal needs the ratings of the house.")]
        return None
    if not isinstance(appraisal, dict):
        errors["appraisal"] = [_("The appraisal must be an object of ratings.")]
        return None

    problems: dict[str, list] = {}
    ratings = {}
    for name, label in MEMBERS:
        value = appraisal.get(name)
        if value in (None, ""):
            problems[name] = [_("Rate the %(member)s.") % {"member": label}]
        elif value not in MemberRating.values:
            problems[name] = [
                _("“%(value)s” is not a rating; use one of: %(choices)s.")
                % {"value": value, "choices": ", ".join(MemberRating.values)}
            ]
        else:
            ratings[name] = value

    hazards = appraisal.get("site_hazards") or []
    if not isinstance(hazards, list | tuple):
        problems["site_hazards"] = [_("Site hazards must be a list of codes.")]
        hazards = []
    unknown = [str(h) for h in hazards if h not in HAZARD_ORDER]
    if unknown:
        problems["site_hazards"] = [
            _("Unknown site hazard(s): %(codes)s; use: %(choices)s.")
            % {"codes": ", ".join(unknown), "choices": ", ".join(HAZARD_ORDER)}
        ]
    hazards = sorted(set(hazards) - set(unknown), key=HAZARD_ORDER.index)

    grade = appraisal.get("grade") or None
    if grade is not None and grade not in GRADES:
        problems["grade"] = [
            _("“%(value)s” is not a grade; use one of: %(choices)s.")
            % {"value": grade, "choices": ", ".join(GRADES)}
        ]
    reason = (appraisal.get("override_reason") or "").strip()

    if problems:
        errors["appraisal"] = problems
        return None
    return {
        "site_hazards": hazards,
        "ratings": ratings,
        "grade": grade,
        "override_reason": reason,
    }


def _point(location) -> Point | None:
    if location is None or isinstance(location, Point):
        return location
    lon, lat = location
    return Point(float(lon), float(lat), srid=4326)


def _check_location(location, accuracy, errors: dict) -> Point | None:
    try:
        point = _point(location)
    except (TypeError, ValueError):
        errors["location"] = [_("The location must be a longitude and a latitude.")]
        return None
    if point is not None:
        lon, lat = point.x, point.y
        if not (
            math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
        ):
            errors["location"] = [
                _("Longitude must be within -180..180 and latitude within -90..90 (WGS84).")
            ]
            return None
    if accuracy is not None and not (math.isfinite(accuracy) and accuracy >= 0):
        errors["location"] = [_("The accuracy is a distance in metres, zero or more.")]
    return point


def inspection_submit(
    *,
    user,
    client_uuid: uuid.UUID | str,
    household: Household | int,
    kind: str,
    started_at: datetime.datetime,
    ended_at: datetime.datetime,
    location: Point | tuple[float, float] | None = None,
    accuracy: float | None = None,
    notes: str = "",
    appraisal: dict | None = None,
) -> tuple[Inspection, bool]:
    """Record a visit to the household's current house, with its appraisal if any.

    Returns (inspection, created). A repeat of the same record returns the stored one with
    created False and stores nothing; the same client UUID with other content raises
    IdempotencyConflict. Raises Http404 when the household is absent or outside the user's
    regions, InspectionRefused when the user may not record inspections, InspectionInvalid
    (with the errors per field) when the record is wrong: nothing is stored then.

    `appraisal`: the six member ratings by name, "site_hazards" (codes), and optionally
    "grade" (an override of the derived grade, which needs a non-blank "override_reason").
    Required for a safety appraisal, allowed for a completion check, refused for works
    progress. After an appraisal the house's grade follows its latest appraisal by visit
    time, so a late upload of an older visit never overwrites a newer grade.
    """
    errors: dict = {}
    try:
        client_uuid = uuid.UUID(str(client_uuid))
    except ValueError:
        errors["client_uuid"] = [
            _("A UUID is required, e.g. 0b9a6f0e-4a8e-4b7e-9d55-2f7c1e0d8a11.")
        ]
    if kind not in InspectionKind.values:
        errors["kind"] = [
            _("“%(value)s” is not an inspection kind; use one of: %(choices)s.")
            % {"value": kind, "choices": ", ".join(InspectionKind.values)}
        ]
    _check_time("started_at", started_at, errors)
    _check_time("ended_at", ended_at, errors)
    if "started_at" not in errors and "ended_at" not in errors and ended_at < started_at:
        errors["ended_at"] = [_("The visit cannot end before it starts.")]
    point = _check_location(location, accuracy, errors)
    notes = (notes or "").strip()
    cleaned = _clean_appraisal(kind, appraisal, errors) if "kind" not in errors else None
    if errors:
        raise InspectionInvalid(errors)

    if not isinstance(household, Household):
        household = household_get(user=user, pk=int(household))
    else:
        # A caller holding a household still may not write outside the user's regions.
        household = household_get(user=user, pk=household.pk)
    house = household.current_house
    # The role is checked before the house, so a reader is refused whatever the house.
    if not can_create_inspection(user, house or House(household=household)):
        raise InspectionRefused(_("Your role may not record inspections."))
    if house is None:
        raise InspectionInvalid(
            {
                "household": [
                    _(
                        "Household %(archive_no)s has no current house to inspect; record "
                        "its house in the registry first."
                    )
                    % {"archive_no": household.archive_no}
                ]
            }
        )

    digest = payload_digest(
        {
            "client_uuid": str(client_uuid),
            "inspector": user.pk,
            "household": household.pk,
            "kind": kind,
            "started_at": _utc_iso(started_at),
            "ended_at": _utc_iso(ended_at),
            "location": None if point is None else [point.x, point.y],
            "accuracy": accuracy,
            "notes": notes,
            "appraisal": None
            if cleaned is None
            else {
                "site_hazards": cleaned["site_hazards"],
                **cleaned["ratings"],
                "grade": cleaned["grade"],
                "override_reason": cleaned["override_reason"],
            },
        }
    )

    with transaction.atomic():
        inspection = Inspection(
            client_uuid=client_uuid,
            house=house,
            inspector=user,
            kind=kind,
            started_at=started_at,
            ended_at=ended_at,
            submitted_location=point,
            submitted_accuracy=accuracy,
            notes=notes,
            payload_digest=digest,
        )
        # Unique fields are left to the database: checking first would race a concurrent
        # repeat of the same record.
        inspection.full_clean(validate_unique=False)
        try:
            with transaction.atomic():  # a savepoint: the outer transaction survives
                inspection.save(force_insert=True)
        except IntegrityError:
            existing = Inspection.objects.filter(client_uuid=client_uuid).first()
            if existing is None:
                raise
            if existing.payload_digest != digest:
                raise IdempotencyConflict(
                    _(
                        "Inspection %(uuid)s was already received with different content; "
                        "a new record needs a new UUID."
                    )
                    % {"uuid": client_uuid}
                ) from None
            return existing, False

        if cleaned is not None:
            _appraisal_create(inspection=inspection, cleaned=cleaned)
            house_grade_follow_latest(house=house)
    return inspection, True


def _appraisal_create(*, inspection: Inspection, cleaned: dict) -> Appraisal:
    """Grade by the active rule and store the appraisal; raises InspectionInvalid when an
    override has no reason (the caller's transaction then drops the inspection too).

    Called after the inspection row is in, so a replay is answered from the stored record
    even if the rule has changed since.
    """
    rule = active_rule()
    derived = derive_grade(
        ratings=cleaned["ratings"], site_hazards=cleaned["site_hazards"], rule=rule
    )
    grade = cleaned["grade"] or derived
    if grade != derived and not cleaned["override_reason"]:
        raise InspectionInvalid(
            {
                "appraisal": {
                    "override_reason": [
                        _("The rule gives grade %(derived)s; write why you give %(grade)s instead.")
                        % {"derived": derived, "grade": grade}
                    ]
                }
            }
        )
    record = Appraisal(
        inspection=inspection,
        site_hazards=cleaned["site_hazards"],
        derived_grade=derived,
        grade=grade,
        override_reason=cleaned["override_reason"] if grade != derived else "",
        rule_version=rule.name,
        **cleaned["ratings"],
    )
    record.full_clean(validate_unique=False)
    record.save(force_insert=True)
    return record


@transaction.atomic
def house_grade_follow_latest(*, house: House) -> House:
    """Set the house's grade to that of its latest appraisal by visit time.

    The house row is locked first, so concurrent appraisals of one house take turns and
    the last to commit reads the others' rows.
    """
    locked = House.objects.select_for_update().get(pk=house.pk)
    latest = (
        Appraisal.objects.filter(inspection__house=locked)
        .order_by("-inspection__started_at", "-inspection__created_at", "-id")
        .values_list("grade", flat=True)
        .first()
    )
    if latest is not None and locked.safety_grade != latest:
        locked.safety_grade = latest
        locked.save(update_fields=["safety_grade"])
    house.safety_grade = locked.safety_grade
    return locked
