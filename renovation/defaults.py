"""The default case configuration, for a database that did not get it from its migration.

inspections/migrations/0005_case_configuration wrote these rows when the cases lived in
the inspections app; a migration is a snapshot, so it keeps its own copy. Test databases
are built without migrations, and the demo calls `case_configuration_ensure` instead.

Area rule (DOMAIN.md), from 2017: at least 13 m² a person; a household of 1–3 people
40–60 m²; at most 18 m² a person above that. Subsidy standards for 2024–2027, for every
key group in the 2017 or the 2021 list: 20,000 yuan to rebuild and 6,000 yuan to repair;
"any other household" 0 yuan (an official enters an amount with a reason).
"""

from decimal import Decimal

from housing.models import KeyGroup
from renovation.models import AreaRule, RenovationMethod, SubsidyStandard

YEARS = range(2024, 2028)
AMOUNTS = {
    RenovationMethod.REPAIR: Decimal("6000"),
    RenovationMethod.REBUILD_SAME_SITE: Decimal("20000"),
    RenovationMethod.REBUILD_SCATTERED: Decimal("20000"),
    RenovationMethod.REBUILD_GROUPED: Decimal("20000"),
}


def case_configuration_ensure() -> None:
    """The default area rule and subsidy standards, where none exist yet (key groups first)."""
    if SubsidyStandard.objects.exists():
        return
    AreaRule.objects.get_or_create(
        effective_year=2017,
        defaults={
            "min_per_person": Decimal("13"),
            "small_household_max_people": 3,
            "small_household_min_area": Decimal("40"),
            "small_household_max_area": Decimal("60"),
            "max_per_person": Decimal("18"),
        },
    )
    groups = list(KeyGroup.objects.filter(in_2017_list=True)) + list(
        KeyGroup.objects.filter(in_2021_list=True, in_2017_list=False)
    )
    for year in YEARS:
        for method, amount in AMOUNTS.items():
            for group in [*groups, None]:
                SubsidyStandard.objects.get_or_create(
                    year=year,
                    method=method,
                    key_group=group,
                    defaults={"amount": amount if group is not None else Decimal("0")},
                )
