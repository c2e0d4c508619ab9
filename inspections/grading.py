"""The appraisal grade rule: how the ratings of a house's members become a grade A–D.

The rule (DOMAIN.md, "Safety appraisal"), evaluated in this order, first match wins:

1. **D**, the house is dangerous as a whole: a site hazard was found (landslide, flood,
   rockfall, subsidence) and the rule's ``site_hazard_makes_d`` is set, or any member
   listed in the rule's ``d_members`` is rated dangerous. By default these are the
   foundation and the main load-bearing system (load-bearing walls, columns and beams).
2. **C**, partly dangerous: any other member is rated dangerous (local danger: roof
   structure, floors and slabs, envelope, by default).
3. **B**, basically safe: any member is rated damaged.
4. **A**, safe: otherwise.

Members rated ``not_present`` (a house with no columns, say) are ignored.

The rule is data, not code: the newest active ``AppraisalRule`` applies, and an
administrator may add another in the admin. Without one (a fresh database without the
data migration, or tests that skip migrations) the defaults of migration 0002 apply. Each
appraisal stores the name of the rule that derived its grade (``rule_version``), so a
later change of rule never silently rewrites what an inspector was told.
"""

import importlib
from dataclasses import dataclass

from inspections.models import MEMBERS, AppraisalRule, MemberRating

# The migration module's name starts with a digit, so it cannot be imported with `from`.
_defaults = importlib.import_module("inspections.migrations.0002_default_configuration")
DEFAULT_RULE = _defaults.DEFAULT_RULE
MEMBER_NAMES = [name for name, _label in MEMBERS]


@dataclass(frozen=True)
class Rule:
    """What the grade rule needs from an AppraisalRule, detached from the database."""

    name: str
    d_members: tuple[str, ...]
    site_hazard_makes_d: bool


def rule_from(rule: AppraisalRule) -> Rule:
    return Rule(
        name=rule.name,
        d_members=tuple(rule.d_members or ()),
        site_hazard_makes_d=rule.site_hazard_makes_d,
    )


DEFAULT = Rule(
    name=DEFAULT_RULE["name"],
    d_members=tuple(DEFAULT_RULE["d_members"]),
    site_hazard_makes_d=DEFAULT_RULE["site_hazard_makes_d"],
)


def active_rule() -> Rule:
    """The newest active rule, or the defaults of migration 0002 when there is none."""
    rule = AppraisalRule.objects.filter(active=True).order_by("-created_at", "-id").first()
    return DEFAULT if rule is None else rule_from(rule)


def derive_grade(*, ratings: dict[str, str], site_hazards: list[str], rule) -> str:
    """The grade ("A".."D") the rule gives for these member ratings and site hazards.

    `rule` is a Rule or an AppraisalRule. Ratings of members not named in MEMBERS are
    ignored; validation of the values is the caller's business (the service does it).
    """
    if isinstance(rule, AppraisalRule):
        rule = rule_from(rule)
    if site_hazards and rule.site_hazard_makes_d:
        return "D"
    rated = {name: ratings.get(name) for name in MEMBER_NAMES}
    dangerous = {name for name, value in rated.items() if value == MemberRating.DANGEROUS}
    if dangerous & set(rule.d_members):
        return "D"
    if dangerous:
        return "C"
    if any(value == MemberRating.DAMAGED for value in rated.values()):
        return "B"
    return "A"
