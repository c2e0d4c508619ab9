"""The audit trail of domain records (django-simple-history): who changed what, and when.

Every create, change and delete is kept: through the services, through requests (with the
signed-in user), through the admin, and through our own bulk writes (the importers, on
PostgreSQL by COPY and on SQLite by bulk_create, and seed_demo).
"""

import csv
import datetime
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from demo import registry as demo
from housing import idnumbers
from housing.models import FamilyMember, House, Household, KeyGroup, Region
from housing.services import household_create
from inspections.models import Appraisal, AppraisalRule, Inspection, Photo, RequiredPhotoSlot
from renovation.events import event_append
from renovation.models import AreaRule, CaseEvent, Payment, RenovationMethod, SubsidyStandard
from tests.audit.test_verify_audit import make_case
from tests.factories import FamilyMemberFactory, key_group
from tests.inspections.factories import PhotoFactory

pytestmark = pytest.mark.django_db

ID_ZHANG = idnumbers.make("520399", datetime.date(1962, 3, 14), 15)
ID_WANG = idnumbers.make("520399", datetime.date(1965, 9, 30), 24)


def kinds(obj) -> list[str]:
    """The history types of a record, oldest first."""
    return list(obj.history.order_by("history_id").values_list("history_type", flat=True))


# --- services and requests ------------------------------------------------------------------


def test_a_record_made_by_a_service_outside_a_request_is_kept_without_a_user(regions):
    household = household_create(
        archive_no="A100", village=regions["village1"], head_name="张三", phone="13800000001"
    )

    [row] = household.history.all()
    assert (row.history_type, row.history_user, row.archive_no, row.head_name, row.phone) == (
        "+",
        None,
        "A100",
        "张三",
        "13800000001",
    )


def test_a_change_and_a_delete_are_kept_with_what_changed_and_the_acting_user(
    regions, county_official
):
    household = household_create(archive_no="A100", village=regions["village1"], head_name="张三")
    household.head_name = "张四"
    # A service without a request names its user this way.
    household._history_user = county_official
    household.save()
    pk = household.pk
    household.delete()

    rows = list(Household.history.filter(id=pk).order_by("history_id"))
    assert [(r.history_type, r.history_user, r.head_name) for r in rows] == [
        ("+", None, "张三"),
        ("~", county_official, "张四"),
        ("-", county_official, "张四"),
    ]
    delta = rows[1].diff_against(rows[0])
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("head_name", "张三", "张四")]
    assert Household.objects.filter(pk=pk).exists() is False


def test_an_inspection_posted_through_the_api_is_kept_with_the_inspector(households, make_user):
    # A phone signs in with a token, which DRF checks in the view, after the middleware ran.
    inspector = make_user(Role.INSPECTOR, [households["village1"].village], username="insp")
    house = households["village1"].houses.get()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=inspector).key}")
    now = datetime.datetime.now(datetime.UTC)

    response = client.post(
        "/api/inspections/",
        {
            "client_uuid": str(uuid.uuid4()),
            "household": households["village1"].pk,
            "kind": "appraisal",
            "started_at": (now - datetime.timedelta(hours=2)).isoformat(),
            "ended_at": (now - datetime.timedelta(hours=1)).isoformat(),
            "appraisal": {
                "site_hazards": [],
                "foundation": "dangerous",
                "load_bearing_walls": "sound",
                "columns_beams": "sound",
                "roof_structure": "sound",
                "floors_slabs": "sound",
                "envelope": "sound",
            },
        },
        format="json",
    )

    assert response.status_code == 201
    inspection = Inspection.objects.get()
    assert [(r.history_type, r.history_user) for r in inspection.history.all()] == [
        ("+", inspector)
    ]
    assert [(r.history_type, r.history_user) for r in inspection.appraisal.history.all()] == [
        ("+", inspector)
    ]
    # The house's grade followed the appraisal: that change is kept too, by the same user.
    latest = house.history.latest()
    assert (latest.history_type, latest.history_user, latest.safety_grade) == (
        "~",
        inspector,
        "D",
    )


# --- the admin ------------------------------------------------------------------------------


def test_adding_changing_and_deleting_in_the_admin_is_kept_with_the_administrator(
    client, administrator
):
    client.force_login(administrator)
    form = {
        "effective_year": "2030",
        "min_per_person": "13",
        "small_household_max_people": "3",
        "small_household_min_area": "40",
        "small_household_max_area": "60",
        "max_per_person": "18",
    }

    added = client.post(reverse("admin:renovation_arearule_add"), form)
    rule = AreaRule.objects.get(effective_year=2030)
    changed = client.post(
        reverse("admin:renovation_arearule_change", args=[rule.pk]),
        {**form, "max_per_person": "20"},
    )
    deleted = client.post(
        reverse("admin:renovation_arearule_delete", args=[rule.pk]), {"post": "yes"}
    )

    assert [added.status_code, changed.status_code, deleted.status_code] == [302, 302, 302]
    rows = AreaRule.history.filter(id=rule.pk).order_by("history_id")
    assert [(r.history_type, r.history_user, r.max_per_person) for r in rows] == [
        ("+", administrator, Decimal("18.0")),
        ("~", administrator, Decimal("20.0")),
        ("-", administrator, Decimal("20.0")),
    ]


def test_the_history_page_shows_who_changed_which_field(client, administrator, households):
    household = households["village1"]
    household.phone = "13900000009"
    household._history_user = administrator
    household.save()
    client.force_login(administrator)

    response = client.get(reverse("admin:housing_household_history", args=[household.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "admin" in html
    assert "13800000000" in html  # the old value
    assert "13900000009" in html  # the new one


def history_objects():
    """One record of every model with a history, each made the ordinary way."""
    case = make_case()
    photo = PhotoFactory(inspection=case.entry_appraisal.inspection)
    payment = Payment.objects.create(
        case=case,
        amount=Decimal("5000.00"),
        paid_on=datetime.date(2025, 9, 1),
        reference="TR-001",
        recorded_by=case.created_by,
    )
    house = case.house
    return {
        "housing.region": house.household.village,
        "housing.keygroup": key_group("minimum_income"),
        "housing.household": house.household,
        "housing.house": house,
        "housing.familymember": FamilyMemberFactory(household=house.household),
        "inspections.inspection": case.entry_appraisal.inspection,
        "inspections.appraisal": case.entry_appraisal,
        "inspections.appraisalrule": AppraisalRule.objects.create(name="history-rule"),
        "inspections.requiredphotoslot": RequiredPhotoSlot.objects.get_or_create(
            kind="completion", stage="after", angle="roof"
        )[0],
        "inspections.photo": photo,
        "renovation.arearule": AreaRule.objects.create(effective_year=2031),
        "renovation.subsidystandard": SubsidyStandard.objects.create(
            year=2031, method=RenovationMethod.REPAIR, amount=Decimal("6000.00")
        ),
        "renovation.renovationcase": case,
        "renovation.payment": payment,
    }


def test_every_domain_record_has_a_history_row_and_a_history_page(client, administrator):
    objects = history_objects()
    client.force_login(administrator)

    for label, obj in objects.items():
        app, model = label.split(".")
        assert kinds(obj)[0] == "+", label
        response = client.get(reverse(f"admin:{app}_{model}_history", args=[obj.pk]))
        assert response.status_code == 200, label
        response = client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
        assert response.status_code == 200, label
    assert {type(o) for o in objects.values()} >= {Photo, Appraisal, Inspection}


# --- the importers --------------------------------------------------------------------------

HEADER = ["archive_no", "village_code", "head_name", "head_id_number", "floor_area", "grade"]
MEMBER_HEADER = ["archive_no", "name", "relation", "id_number", "disability"]


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def import_households(tmp_path, rows, members=None):
    args = [str(write_csv(tmp_path / "households.csv", HEADER, rows))]
    if members is not None:
        args += ["--members", str(write_csv(tmp_path / "members.csv", MEMBER_HEADER, members))]
    call_command("import_households", *args, stdout=StringIO())


def imported_history(model) -> list[tuple]:
    return sorted(
        model.history.values_list("history_type", "history_change_reason", "history_user")
    )


ROWS = [
    ["A001", "520399100200", "张三", ID_ZHANG, "72.5", "C"],
    ["A002", "520399101200", "李四", "", "120", "B"],
]
MEMBERS = [["A001", "张三", "户主", ID_ZHANG, ""], ["A001", "王芳", "配偶", ID_WANG, "二级"]]


def test_an_import_keeps_every_row_it_creates_in_history(tmp_path, regions):
    import_households(tmp_path, ROWS, MEMBERS)

    created = ("+", "import_households", None)
    assert imported_history(Household) == [created, created]
    assert imported_history(House) == [created, created]
    assert imported_history(FamilyMember) == [created, created]
    # The history holds the rows as written, defaults and timestamps included.
    household = Household.objects.get(archive_no="A001")
    row = household.history.get()
    assert (row.head_name, row.head_id_number, row.village_id, row.created_at) == (
        "张三",
        ID_ZHANG,
        regions["village1"].pk,
        household.created_at,
    )
    house = household.houses.get()
    assert (house.history.get().floor_area, house.history.get().safety_grade) == (
        Decimal("72.50"),
        "C",
    )
    member = FamilyMember.objects.get(name="王芳")
    assert (member.history.get().id, member.history.get().disability_level) == (member.pk, "2")


def test_a_reimport_keeps_the_rows_it_changes_as_changed(tmp_path, regions):
    import_households(tmp_path, ROWS, MEMBERS)

    changed_rows = [[*ROWS[0][:4], "80", "D"], ROWS[1]]
    import_households(tmp_path, changed_rows, [MEMBERS[0], [*MEMBERS[1][:4], "一级"]])

    # Every household in the file is written again (an upsert); only changed houses and
    # members are.
    assert kinds(Household.objects.get(archive_no="A001")) == ["+", "~"]
    assert kinds(Household.objects.get(archive_no="A002")) == ["+", "~"]
    house = House.objects.get(household__archive_no="A001")
    assert kinds(house) == ["+", "~"]
    assert (house.history.latest().floor_area, house.history.latest().safety_grade) == (
        Decimal("80.00"),
        "D",
    )
    assert kinds(House.objects.get(household__archive_no="A002")) == ["+"]
    assert kinds(FamilyMember.objects.get(name="王芳")) == ["+", "~"]
    assert FamilyMember.objects.get(name="王芳").history.latest().disability_level == "1"
    assert kinds(FamilyMember.objects.get(name="张三")) == ["+"]


def test_a_region_import_keeps_created_and_changed_regions(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("code,name\n52,贵州省\n5203,遵义市\n520329,余庆县\n", encoding="utf-8")
    call_command("import_regions", str(path), stdout=StringIO())
    path.write_text("code,name\n520329,余庆县（新）\n", encoding="utf-8")
    call_command("import_regions", str(path), stdout=StringIO())

    county = Region.objects.get(code="520329")
    rows = county.history.order_by("history_id")
    assert [(r.history_type, r.history_change_reason, r.name) for r in rows] == [
        ("+", "import_regions", "余庆县"),
        ("~", "import_regions", "余庆县（新）"),
    ]
    assert kinds(Region.objects.get(code="52")) == ["+"]


def test_seed_demo_keeps_every_row_it_bulk_creates(db):
    call_command("seed_demo", households=12, seed=5, no_photos=True, stdout=StringIO())

    for model in (Region, Household, House, FamilyMember):
        created = set(
            model.history.filter(history_type="+").values_list("id", flat=True).distinct()
        )
        assert created == set(model.objects.values_list("pk", flat=True)), model.__name__
    assert Household.history.filter(history_change_reason="seed_demo").count() == 12


def test_key_groups_the_seeder_creates_are_kept(db):
    # The data migration's key groups (and the subsidy standards that name them) out of the
    # way: the seeder creates key groups only in an empty table.
    SubsidyStandard.objects.all().delete()
    KeyGroup.objects.all().delete()

    groups = demo.key_groups_ensure()

    assert len(groups) > 0
    for group in KeyGroup.objects.all():
        assert [(r.history_type, r.history_change_reason, r.code) for r in group.history.all()] == [
            ("+", "seed_demo", group.code)
        ]


def test_case_events_can_be_read_but_not_changed_or_deleted_in_the_admin(client, administrator):
    case = make_case()
    event = event_append(
        case=case, kind="opened", from_state="", to_state="applied", actor=case.created_by
    )
    client.force_login(administrator)

    listed = client.get(reverse("admin:renovation_caseevent_changelist"))
    shown = client.get(reverse("admin:renovation_caseevent_change", args=[event.pk]))
    deleted = client.post(
        reverse("admin:renovation_caseevent_delete", args=[event.pk]), {"post": "yes"}
    )

    assert (listed.status_code, shown.status_code, deleted.status_code) == (200, 200, 403)
    assert CaseEvent.objects.filter(pk=event.pk).exists()
    assert shown.context["has_change_permission"] is False


@pytest.mark.django_db
def test_history_tables_keep_geometries_without_a_spatial_index():
    """History is read by record and date: its copies of locations and boundaries carry no
    GiST index for every history row to pay (PostGIS; SpatiaLite keeps its R*Tree)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the indexes are dropped on PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE indexdef LIKE '%%USING gist%%' "
            "AND tablename LIKE '%%historical%%'"
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%%USING gist%%' "
            "AND tablename IN ('housing_household', 'housing_region', 'inspections_photo')"
        )
        assert cursor.fetchone()[0] == 3
