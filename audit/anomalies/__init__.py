"""The auditor's worklist: what looks wrong in the cases and the registry, and why.

The kinds are found by what they look at: cases (anomalies/cases.py), people
(anomalies/people.py) and photos (anomalies/photos.py); base.py holds what they share.

Each kind of anomaly is found by a fixed number of SQL queries (aggregates, EXISTS
subqueries, GROUP BY), scoped to the user's regions with accounts.scoping; Python only
words the rows those queries return, so the cost does not grow with the households that
are fine.

Which cases count: rejected and withdrawn cases are the chain doing its job, so the
case-based kinds look at every other case (open or paid). The registry kinds (missing and
duplicate ID numbers) look at every household in the user's regions; with a funding-year
filter, at the households with a case funded that year.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from audit.anomalies import cases, people, photos
from audit.anomalies.base import Anomaly, AnomalyKind, Filters

__all__ = ["Anomaly", "AnomalyKind", "Worklist", "anomaly_list", "anomaly_worklist"]

FINDERS = {
    AnomalyKind.NO_KEY_GROUP: cases.no_key_group,
    AnomalyKind.GRADE_NOT_C_OR_D: cases.grade_not_c_or_d,
    AnomalyKind.REPEAT_CASE: cases.repeat_case,
    AnomalyKind.SHARED_ID: people.shared_id,
    AnomalyKind.DOUBLE_BENEFIT: cases.double_benefit,
    AnomalyKind.AREA_OVER_RULE: cases.area_over_rule,
    AnomalyKind.MISSING_ID: people.missing_id,
    AnomalyKind.DUPLICATE_ID: people.duplicate_id,
    AnomalyKind.PHOTO_FLAGS: photos.photo_flags,
    AnomalyKind.OVERDUE: cases.overdue,
}


@dataclass(frozen=True)
class Worklist:
    anomalies: list[Anomaly]
    counts: dict[str, int] = field(default_factory=dict)  # every kind, before the kind filter


def anomaly_list(*, user, kinds=None, region=None, year=None) -> list[Anomaly]:
    """The anomalies of these kinds (all when None) in the user's regions, under the
    region with code `region`, for cases funded in `year`. Ordered by kind, then household."""
    wanted = _kinds(kinds)
    found = _find(Filters(user, region or None, year or None), wanted)
    return [anomaly for code in wanted for anomaly in found[code]]


def anomaly_worklist(*, user, kinds=None, region=None, year=None) -> Worklist:
    """The anomalies of these kinds, plus how many there are of every kind (so a page
    filtered to one kind still shows what the others hold)."""
    wanted = _kinds(kinds)
    found = _find(Filters(user, region or None, year or None), AnomalyKind.values)
    return Worklist(
        anomalies=[anomaly for code in wanted for anomaly in found[code]],
        counts={code: len(found[code]) for code in AnomalyKind.values},
    )


def _kinds(kinds) -> list[str]:
    if not kinds:
        return list(AnomalyKind.values)
    unknown = [k for k in kinds if k not in AnomalyKind.values]
    if unknown:
        raise ValueError(
            _("Unknown anomaly kind “%(kind)s”; use one of: %(kinds)s.")
            % {"kind": unknown[0], "kinds": ", ".join(AnomalyKind.values)}
        )
    return [code for code in AnomalyKind.values if code in kinds]


def _find(filters: Filters, kinds: list[str]) -> dict[str, list[Anomaly]]:
    found = {}
    for code in kinds:
        rows = FINDERS[code](filters)
        found[code] = sorted(
            rows, key=lambda a: (a.household.archive_no, a.case.pk if a.case else 0, a.reason)
        )
    return found
