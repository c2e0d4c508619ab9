"""Every write to the registry goes through here."""

import datetime

from django.contrib.gis.geos import Point
from django.db import transaction

from housing import coords, idnumbers
from housing.models import (
    FamilyMember,
    House,
    Household,
    IdNumberReveal,
    LocationSource,
    Region,
)


def derive_from_id_number(id_number: str) -> tuple[str, datetime.date | None]:
    """(sex, birth date) from a valid ID number; ("", None) when blank or invalid."""
    if not id_number:
        return "", None
    try:
        info = idnumbers.parse(id_number)
    except Exception:  # noqa: BLE001 - validation reports it; derivation just stays empty
        return "", None
    return info.sex, info.birth_date


def wgs84_from(lon: float, lat: float, *, crs: str = "wgs84") -> tuple[float, float]:
    """The stored WGS84 (lon, lat) of input coordinates in WGS84, CGCS2000 or GCJ-02."""
    if crs == "gcj02":
        return coords.gcj02_to_wgs84(lon, lat)
    return lon, lat


def point_from(lon: float, lat: float, *, crs: str = "wgs84") -> Point:
    """A stored WGS84 point from input coordinates in WGS84, CGCS2000 or GCJ-02."""
    return Point(*wgs84_from(lon, lat, crs=crs), srid=4326)


@transaction.atomic
def household_create(
    *,
    archive_no: str,
    village: Region,
    head_name: str,
    head_id_number: str = "",
    phone: str = "",
    address: str = "",
    location: Point | None = None,
    location_source: str = "",
    key_group=None,
    poverty_relocation: bool = False,
    notes: str = "",
) -> Household:
    household = Household(
        archive_no=archive_no,
        village=village,
        head_name=head_name,
        head_id_number=idnumbers.normalize(head_id_number),
        phone=phone,
        address=address,
        location=location,
        location_source=location_source or (LocationSource.SURVEYED if location else ""),
        key_group=key_group,
        poverty_relocation=poverty_relocation,
        notes=notes,
    )
    household.full_clean()
    household.save()
    return household


@transaction.atomic
def house_create(*, household: Household, is_current: bool = True, **fields) -> House:
    if is_current:
        # The previous current house is kept as a replaced one, not deleted.
        # A model save, not a queryset update, so each replaced house's history records it.
        for old in household.houses.filter(is_current=True):
            old.is_current = False
            old.save(update_fields=["is_current"])
    house = House(household=household, is_current=is_current, **fields)
    house.full_clean()
    house.save()
    return house


@transaction.atomic
def family_member_create(
    *,
    household: Household,
    name: str,
    relation: str,
    id_number: str = "",
    disability_level: str = "",
    phone: str = "",
) -> FamilyMember:
    id_number = idnumbers.normalize(id_number)
    sex, birth_date = derive_from_id_number(id_number)
    member = FamilyMember(
        household=household,
        name=name,
        relation=relation,
        id_number=id_number,
        sex=sex,
        birth_date=birth_date,
        disability_level=disability_level,
        phone=phone,
    )
    member.full_clean()
    member.save()
    return member


def id_numbers_reveal(*, user, household: Household, via: str) -> dict[str, str]:
    """Log that `user` saw this household's ID numbers, and return them unmasked.

    Keys: "head" and "member:<id>". The caller checks can_reveal_id_numbers first.
    """
    IdNumberReveal.objects.create(user=user, household=household, via=via)
    numbers = {"head": household.head_id_number}
    for member in household.members.all():
        numbers[f"member:{member.pk}"] = member.id_number
    return numbers
