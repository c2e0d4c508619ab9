"""The categories the maps colour by, their colours and their labels: one place for the tiles,
the legend, the choropleth and the dashboard.

Grades are the appraisal grades. Case states are grouped into five stages: eleven colours on
a map cannot be told apart, and an official asks "how far along", not "which of the eleven".
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from housing.models import SafetyGrade
from renovation.models import CaseState


@dataclass(frozen=True)
class Category:
    key: str
    label: str | Promise
    colour: str


# Same colours as the grade badges in static/css/anju.css.
GRADES = [
    Category("A", SafetyGrade.A.label, "#1e7b3c"),
    Category("B", SafetyGrade.B.label, "#7fae3a"),
    Category("C", SafetyGrade.C.label, "#e08a00"),
    Category("D", SafetyGrade.D.label, "#b42318"),
    Category("none", SafetyGrade.NOT_APPRAISED.label, "#8a94a0"),
]
GRADE_KEY = {"A": "A", "B": "B", "C": "C", "D": "D", "": "none"}  # stored grade -> key

NO_CASE = "none"
STAGES = [
    Category(NO_CASE, pgettext_lazy("case stage", "No case"), "#8a94a0"),
    Category("approval", pgettext_lazy("case stage", "Being approved"), "#3a7ca5"),
    Category("works", pgettext_lazy("case stage", "Works under way"), "#e08a00"),
    Category("completed", pgettext_lazy("case stage", "Completed"), "#1e7b3c"),
    Category("closed", pgettext_lazy("case stage", "Rejected or withdrawn"), "#6d4c8d"),
]
STAGE_OF_STATE = {
    "": NO_CASE,
    CaseState.APPLIED: "approval",
    CaseState.VILLAGE_REVIEWED: "approval",
    CaseState.NOTICED: "approval",
    CaseState.TOWNSHIP_CHECKED: "approval",
    CaseState.COUNTY_APPROVED: "approval",
    CaseState.WORKS_STARTED: "works",
    CaseState.WORKS_FINISHED: "works",
    CaseState.COMPLETION_PASSED: "completed",
    CaseState.PAID: "completed",
    CaseState.REJECTED: "closed",
    CaseState.WITHDRAWN: "closed",
}
STATES_OF_STAGE: dict[str, list[str]] = {}
for _state, _stage in STAGE_OF_STATE.items():
    STATES_OF_STAGE.setdefault(_stage, []).append(str(_state))

COLOUR_MODES = [("grade", _("Grade")), ("stage", _("Case stage"))]


def legend(mode: str) -> list[Category]:
    return STAGES if mode == "stage" else GRADES


def as_json(categories: list[Category]) -> list[dict]:
    """For the page's JavaScript: key, label (in the reader's language) and colour."""
    return [{"key": c.key, "label": str(c.label), "colour": c.colour} for c in categories]
