"""Default configuration, editable in the admin: the appraisal rule and the required photo slots."""

from django.db import migrations

# DOMAIN.md: a dangerous foundation or main load-bearing system makes the house D; local
# danger (roof structure, floors and slabs, envelope) makes it C.
DEFAULT_RULE = {
    "name": "default-2026",
    "d_members": ["foundation", "load_bearing_walls", "columns_beams"],
    "site_hazard_makes_d": True,
}

# kind -> stage -> angles. One household, one file: the photos each visit must bring back.
SLOTS = {
    "appraisal": {
        "before": ["front", "left", "back", "roof", "interior", "structure", "householder"]
    },
    "progress": {"during": ["front", "structure"]},
    "completion": {"after": ["front", "left", "back", "roof", "interior", "householder"]},
}


def add(apps, schema_editor):
    AppraisalRule = apps.get_model("inspections", "AppraisalRule")
    RequiredPhotoSlot = apps.get_model("inspections", "RequiredPhotoSlot")
    AppraisalRule.objects.get_or_create(name=DEFAULT_RULE["name"], defaults=DEFAULT_RULE)
    for kind, stages in SLOTS.items():
        for stage, angles in stages.items():
            for angle in angles:
                RequiredPhotoSlot.objects.get_or_create(kind=kind, stage=stage, angle=angle)


def remove(apps, schema_editor):
    apps.get_model("inspections", "AppraisalRule").objects.filter(
        name=DEFAULT_RULE["name"]
    ).delete()
    apps.get_model("inspections", "RequiredPhotoSlot").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("inspections", "0001_initial")]
    operations = [migrations.RunPython(add, remove)]
