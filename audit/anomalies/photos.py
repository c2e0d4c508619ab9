"""Anomalies found in the photos: the evidence flags their processing raised."""

from django.db.models import (
    Count,
    Q,
    TextField,
)
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audit.anomalies.base import (
    Anomaly,
    AnomalyKind,
    Filters,
    case_anomaly,
    case_rows,
    cases_of,
    join,
)
from inspections.models import Photo, PhotoFlag


def _flag_pattern(code: str) -> str:
    # Flags are stored as a JSON list of {"code": ..., ...}; PostgreSQL prints jsonb, and
    # Django writes JSON on SQLite, with ": " after a key, so this text is the same on both.
    return f'"code": "{code}"'


def photo_flags(filters: Filters) -> list[Anomaly]:
    cases = cases_of(filters)
    counts = {
        flag.value: Count("id", filter=Q(flag_text__contains=_flag_pattern(flag.value)))
        for flag in PhotoFlag
    }
    by_house = {
        row["inspection__house"]: row
        for row in Photo.objects.filter(inspection__house__in=cases.values("house"))
        .alias(flag_text=Cast("flags", TextField()))
        .values("inspection__house")
        .annotate(flagged=Count("id", filter=Q(flag_text__contains='"code": ')), **counts)
        .filter(flagged__gt=0)
        .order_by()
    }
    if not by_house:
        return []
    anomalies = []
    for case in case_rows(cases.filter(house__in=list(by_house))):
        row = by_house[case.house_id]
        listed = join(
            _("%(flag)s: %(n)d") % {"flag": flag.label, "n": row[flag.value]}
            for flag in PhotoFlag
            if row[flag.value]
        )
        reason = ngettext(
            "Case %(case)s: %(n)d photo of the house is flagged (%(flags)s).",
            "Case %(case)s: %(n)d photos of the house are flagged (%(flags)s).",
            row["flagged"],
        ) % {"case": case.pk, "n": row["flagged"], "flags": listed}
        anomalies.append(case_anomaly(AnomalyKind.PHOTO_FLAGS, case, reason))
    return anomalies
