"""Template helpers for photo evidence: `{% load evidence %}`."""

from django import template
from django.urls import reverse

from inspections.evidence import flag_detail
from inspections.models import PhotoFlag

register = template.Library()


def flag_label(code: str) -> str:
    """The flag's name in words ("Taken far from the house"); an unknown code as it is."""
    try:
        return str(PhotoFlag(code).label)
    except ValueError:
        return code


def flag_items(flags) -> list[dict]:
    """A photo's flags as {"code", "label", "detail"}, in the order they were raised."""
    return [
        {
            "code": flag.get("code", ""),
            "label": flag_label(flag.get("code", "")),
            "detail": flag_detail(flag),
        }
        for flag in flags or []
        if isinstance(flag, dict)
    ]


register.filter("flag_items", flag_items)
register.filter("flag_label", flag_label)


@register.simple_tag
def photo_url(photo, variant: str) -> str:
    """Where a copy of the photo is served, through the permission check of photo_file."""
    return reverse("inspections:photo_file", args=[photo.key, variant])
