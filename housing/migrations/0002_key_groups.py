"""The key groups of DOMAIN.md: the 2017–2020 four and the six from 2021, as data."""

from django.db import migrations

GROUPS = [
    # code, name, in 2017 list, in 2021 list
    ("registered_poor", "建档立卡贫困户", True, False),
    ("minimum_income", "低保户", True, True),
    ("extremely_poor_dispersed", "分散供养特困人员", True, True),
    ("poor_disabled_family", "贫困残疾人家庭", True, False),
    ("at_risk_of_poverty", "易返贫致贫户", False, True),
    ("sudden_hardship", "突发严重困难户", False, True),
    ("minimum_income_marginal", "低保边缘家庭", False, True),
    ("other_left_poverty", "其他脱贫户（未享受住房保障）", False, True),
]


def add_groups(apps, schema_editor):
    KeyGroup = apps.get_model("housing", "KeyGroup")
    for order, (code, name, y2017, y2021) in enumerate(GROUPS):
        KeyGroup.objects.update_or_create(
            code=code,
            defaults={"name": name, "in_2017_list": y2017, "in_2021_list": y2021, "sort_order": order},
        )


def remove_groups(apps, schema_editor):
    apps.get_model("housing", "KeyGroup").objects.filter(code__in=[g[0] for g in GROUPS]).delete()


class Migration(migrations.Migration):
    dependencies = [("housing", "0001_initial")]
    operations = [migrations.RunPython(add_groups, remove_groups)]
