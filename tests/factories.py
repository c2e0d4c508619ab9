"""The one way to make test data."""

import datetime

import factory
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from accounts.models import Role, User
from housing import idnumbers
from housing.models import (
    FamilyMember,
    House,
    Household,
    KeyGroup,
    LocationSource,
    Region,
    RegionLevel,
    Relation,
    SafetyGrade,
    StructureType,
)

DEMO_PASSWORD = "test-pass-123"


def square(lon: float, lat: float, size: float = 0.01) -> MultiPolygon:
    """A small square boundary with its south-west corner at (lon, lat)."""
    return MultiPolygon(
        Polygon(
            ((lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat))
        ),
        srid=4326,
    )


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"52{n % 100:02d}")
    name = factory.LazyAttribute(lambda o: f"Region {o.code}")
    level = RegionLevel.CITY
    parent = None
    boundary = None


def make_region(code: str, name: str | None = None, boundary=None) -> Region:
    """A region and all its ancestors, each created once, level taken from the code length."""
    from housing.models import LEVEL_BY_CODE_LENGTH, parent_code

    parent = None
    pcode = parent_code(code)
    if pcode:
        parent = make_region(pcode)
    return RegionFactory(
        code=code,
        name=name or f"Region {code}",
        level=LEVEL_BY_CODE_LENGTH[len(code)],
        parent=parent,
        boundary=boundary,
    )


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.INSPECTOR
    password = factory.PostGenerationMethodCall("set_password", DEMO_PASSWORD)

    @factory.post_generation
    def regions(self, create, extracted, **kwargs):
        if create and extracted:
            self.regions.set(extracted)
        if create:
            if self.role == Role.ADMINISTRATOR:
                self.is_staff = True
                self.is_superuser = True
            self.save()


def key_group(code: str = "minimum_income") -> KeyGroup:
    """Key groups come from the data migration; tests run without migrations, so make them."""
    names = {
        "minimum_income": ("低保户", True, True),
        "registered_poor": ("建档立卡贫困户", True, False),
        "at_risk_of_poverty": ("易返贫致贫户", False, True),
    }
    name, y2017, y2021 = names.get(code, (code, False, True))
    group, _ = KeyGroup.objects.get_or_create(
        code=code, defaults={"name": name, "in_2017_list": y2017, "in_2021_list": y2021}
    )
    return group


class HouseholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Household

    archive_no = factory.Sequence(lambda n: f"HH{n:08d}")
    village = factory.LazyFunction(lambda: make_region("520399100200"))
    head_name = factory.Sequence(lambda n: f"户主{n}")
    head_id_number = factory.Sequence(
        lambda n: idnumbers.make(
            "520399", datetime.date(1960, 1, 1) + datetime.timedelta(days=n), n % 1000
        )
    )
    phone = "13800000000"
    address = factory.LazyAttribute(lambda o: f"{o.village.name} {o.archive_no}")
    location = factory.LazyFunction(lambda: Point(107.905, 27.205, srid=4326))
    location_source = LocationSource.SURVEYED
    key_group = factory.LazyFunction(key_group)


class HouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = House

    household = factory.SubFactory(HouseholdFactory)
    is_current = True
    structure_type = StructureType.EARTH_WOOD
    storeys = 1
    floor_area = "72.50"
    year_built = 1985
    safety_grade = SafetyGrade.C


class FamilyMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FamilyMember

    household = factory.SubFactory(HouseholdFactory)
    name = factory.Sequence(lambda n: f"成员{n}")
    relation = Relation.CHILD
    id_number = factory.Sequence(
        lambda n: idnumbers.make(
            "520399", datetime.date(1990, 1, 1) + datetime.timedelta(days=n), (n * 2 + 1) % 1000
        )
    )
    sex = factory.LazyAttribute(lambda o: idnumbers.parse(o.id_number).sex if o.id_number else "")
    birth_date = factory.LazyAttribute(
        lambda o: idnumbers.parse(o.id_number).birth_date if o.id_number else None
    )
