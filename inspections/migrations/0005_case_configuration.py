"""Default case configuration, editable in the admin: the area rule and subsidy standards.

Area rule (DOMAIN.md), from 2017: at least 13 m² a person; a household of 1–3 people
40–60 m²; at most 18 m² a person above that.

Subsidy standards for the funding years 2024–2027, for every key group in the 2017 or the
2021 list: 20,000 yuan to rebuild (each of the three rebuild methods) and 6,000 yuan to
repair and reinforce. The row with no key group ("any other household") is 0 yuan: a
household outside the key groups gets nothing unless an official enters an amount with a
reason (and the auditor's worklist shows the case). A county changes these rows in the admin.
"""

from decimal import Decimal

from django.db import migrations

YEARS = range(2024, 2028)
REBUILD = ["rebuild_same_site", "rebuild_scattered", "rebuild_grouped"]
AMOUNTS = {"repair": Decimal("6000"), **{m: Decimal("20000") for m in REBUILD}}


def add(apps, schema_editor):
    AreaRule = apps.get_model("inspections", "AreaRule")
    SubsidyStandard = apps.get_model("inspections", "SubsidyStandard")
    KeyGroup = apps.get_model("housing", "KeyGroup")
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
            for group in groups:
                SubsidyStandard.objects.get_or_create(
                    year=year, method=method, key_group=group, defaults={"amount": amount}
                )
            SubsidyStandard.objects.get_or_create(
                year=year, method=method, key_group=None, defaults={"amount": Decimal("0")}
            )


def remove(apps, schema_editor):
    apps.get_model("inspections", "SubsidyStandard").objects.filter(year__in=YEARS).delete()
    apps.get_model("inspections", "AreaRule").objects.filter(effective_year=2017).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("housing", "0002_key_groups"),
        ("inspections", "0004_renovation_cases"),
    ]
    operations = [migrations.RunPython(add, remove)]
