import csv
import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from openpyxl import Workbook

from housing import idnumbers
from housing.models import (
    FamilyMember,
    House,
    Household,
    LocationSource,
    SafetyGrade,
    StructureType,
)
from tests.factories import HouseFactory, HouseholdFactory, key_group

pytestmark = pytest.mark.django_db

ID_ZHANG = idnumbers.make("520399", datetime.date(1962, 3, 14), 15)  # male
ID_LI = idnumbers.make("520399", datetime.date(1970, 7, 1), 21)  # male
ID_WANG = idnumbers.make("520399", datetime.date(1965, 9, 30), 24)  # female

HEADER = [
    "archive_no",
    "village_code",
    "head_name",
    "head_id_number",
    "phone",
    "address",
    "longitude",
    "latitude",
    "key_group",
    "structure_type",
    "storeys",
    "floor_area",
    "year_built",
    "grade",
]
CHINESE_HEADER = [
    "档案编号",
    "村代码",
    "户主姓名",
    "户主身份证号",
    "联系电话",
    "住址",
    "经度",
    "纬度",
    "重点对象类型",
    "结构类型",
    "层数",
    "建筑面积",
    "建造年份",
    "鉴定等级",
]
ROWS = [
    [
        "A001",
        "520399100200",
        "张三",
        ID_ZHANG,
        "13800000001",
        "青山村1组",
        "107.91",
        "27.21",
        "低保户",
        "土木",
        "1",
        "72.5",
        "1985",
        "C",
    ],
    [
        "A002",
        "520399101200",
        "李四",
        ID_LI,
        "",
        "河坝村2组",
        "",
        "",
        "minimum_income",
        "brick_wood",
        "2",
        "120",
        "1990",
        "B级",
    ],
]
MEMBER_HEADER = ["archive_no", "name", "relation", "id_number", "disability"]
CHINESE_MEMBER_HEADER = ["档案编号", "姓名", "与户主关系", "身份证号", "残疾等级"]
MEMBER_ROWS = [
    ["A001", "张三", "户主", ID_ZHANG, ""],
    ["A001", "王芳", "配偶", ID_WANG, "二级"],
    ["A002", "李小", "子女", "", ""],
]


@pytest.fixture
def groups(db):
    return {"minimum_income": key_group("minimum_income")}


def write_csv(path, header, rows, *, bom=False):
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(*args) -> str:
    out = StringIO()
    call_command("import_households", *[str(a) for a in args], stdout=out)
    return out.getvalue().strip()


def failure(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return str(caught.value)


def assert_nothing_written():
    assert Household.objects.count() == 0
    assert House.objects.count() == 0
    assert FamilyMember.objects.count() == 0


def assert_imported(groups):
    a001 = Household.objects.get(archive_no="A001")
    assert a001.village.code == "520399100200"
    assert a001.head_name == "张三"
    assert a001.head_id_number == ID_ZHANG
    assert a001.phone == "13800000001"
    assert a001.address == "青山村1组"
    assert a001.location.coords == pytest.approx((107.91, 27.21))
    assert a001.location.srid == 4326
    assert a001.location_source == LocationSource.IMPORTED
    assert a001.key_group == groups["minimum_income"]
    house = a001.houses.get(is_current=True)
    assert house.structure_type == StructureType.EARTH_WOOD
    assert house.storeys == 1
    assert house.floor_area == Decimal("72.50")
    assert house.year_built == 1985
    assert house.safety_grade == SafetyGrade.C

    a002 = Household.objects.get(archive_no="A002")
    assert a002.location is None
    assert a002.location_source == ""
    assert a002.key_group == groups["minimum_income"]
    house = a002.houses.get(is_current=True)
    assert (house.structure_type, house.storeys, house.floor_area, house.safety_grade) == (
        StructureType.BRICK_WOOD,
        2,
        Decimal("120.00"),
        SafetyGrade.B,
    )

    members = {m.name: m for m in FamilyMember.objects.all()}
    assert sorted(members) == ["张三", "李小", "王芳"]
    assert members["张三"].household == a001
    assert members["张三"].relation == "head"
    assert (members["张三"].sex, members["张三"].birth_date) == ("M", datetime.date(1962, 3, 14))
    assert members["王芳"].relation == "spouse"
    assert (members["王芳"].sex, members["王芳"].birth_date) == ("F", datetime.date(1965, 9, 30))
    assert members["王芳"].disability_level == "2"
    assert members["李小"].household == a002
    assert (members["李小"].relation, members["李小"].id_number, members["李小"].sex) == (
        "child",
        "",
        "",
    )


def test_good_csv_imports_households_houses_and_members(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(tmp_path / "members.csv", MEMBER_HEADER, MEMBER_ROWS)

    output = run(households, "--members", members)

    assert output == "Households: 2 created, 0 updated. Members: 3 created, 0 updated."
    assert_imported(groups)


def test_good_xlsx_with_numeric_cells_imports_the_same(tmp_path, regions, groups):
    def workbook(path, header, rows):
        book = Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        book.save(path)
        return path

    # As Excel stores them: codes, coordinates and numbers as numbers, not text.
    rows = [
        ["A001", 520399100200, "张三", ID_ZHANG, 13800000001, "青山村1组", 107.91, 27.21,
         "低保户", "土木", 1, 72.5, 1985, "C"],
        ["A002", 520399101200, "李四", ID_LI, None, "河坝村2组", None, None,
         "minimum_income", "brick_wood", 2, 120, 1990, "B级"],
    ]  # fmt: skip
    households = workbook(tmp_path / "households.xlsx", HEADER, rows)
    members = workbook(tmp_path / "members.xlsx", MEMBER_HEADER, MEMBER_ROWS)

    output = run(households, "--members", members)

    assert output == "Households: 2 created, 0 updated. Members: 3 created, 0 updated."
    assert_imported(groups)


def test_chinese_headers_in_a_csv_with_a_byte_order_mark(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", CHINESE_HEADER, ROWS, bom=True)
    members = write_csv(tmp_path / "members.csv", CHINESE_MEMBER_HEADER, MEMBER_ROWS, bom=True)

    output = run(households, "--members", members)

    assert output == "Households: 2 created, 0 updated. Members: 3 created, 0 updated."
    assert_imported(groups)


def with_cell(row_index: int, column: str, value: str) -> list[list[str]]:
    rows = [list(row) for row in ROWS]
    rows[row_index][HEADER.index(column)] = value
    return rows


BAD_ID = ID_ZHANG[:17] + ("0" if ID_ZHANG[17] != "0" else "1")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        pytest.param(
            "head_id_number",
            BAD_ID,
            f"The check character of the ID number is wrong (expected {ID_ZHANG[17]}).",
            id="bad-id-check-character",
        ),
        pytest.param(
            "village_code",
            "520399100299",
            "No region has the code 520399100299; import the regions first.",
            id="unknown-village",
        ),
        pytest.param(
            "village_code",
            "520399100",
            "520399100 is a Township (龙溪镇), not a village.",
            id="not-a-village",
        ),
        pytest.param("storeys", "two", "“two” value must be an integer.", id="bad-number"),
        pytest.param(
            "storeys", "11", "Ensure this value is less than or equal to 10.", id="out-of-range"
        ),
        pytest.param(
            "floor_area",
            "72.555",
            "Ensure that there are no more than 2 decimal places.",
            id="too-many-decimals",
        ),
        pytest.param("head_name", "", "A value is required.", id="missing-required-value"),
        pytest.param(
            "archive_no", "A001", "The archive number A001 is also in row 2.", id="duplicate"
        ),
        pytest.param("latitude", "97.2", "A latitude is between -90 and 90.", id="latitude-range"),
        pytest.param(
            "longitude", "187.9", "A longitude is between -180 and 180.", id="longitude-range"
        ),
        pytest.param(
            "structure_type",
            "茅草",
            "Not a known value. Use one of: masonry (Masonry), brick_wood (Brick-wood), "
            "earth_wood (Earth-wood), timber (Timber), stone (Stone), concrete_frame "
            "(Concrete frame), cave (Cave dwelling), other (Other).",
            id="unknown-structure",
        ),
        pytest.param(
            "key_group",
            "五保户",
            "Not a known key group. Known groups: minimum_income (低保户).",
            id="unknown-key-group",
        ),
    ],
)
def test_a_bad_row_imports_nothing_and_names_row_column_and_value(
    tmp_path, regions, groups, column, value, message
):
    # The first data row (row 2) is bad and the second is good, except for a duplicate,
    # which is the second row's fault; either way the good row is not written either.
    index = 1 if column == "archive_no" else 0
    households = write_csv(tmp_path / "households.csv", HEADER, with_cell(index, column, value))

    report = failure(households)

    assert report == (
        "1 problem found; nothing was imported.\n"
        f"households.csv, row {index + 2}, column {column}, value “{value}”: {message}"
    )
    assert_nothing_written()


def test_a_bad_row_after_new_households_were_written_takes_them_back(tmp_path, regions, groups):
    """New households are written (COPY on PostgreSQL) while the next rows are checked: a
    problem further down reads what its message needs without disturbing the write, and
    the import still leaves nothing behind."""
    rows = with_cell(1, "key_group", "五保户")
    rows.append(["A003", *rows[0][1:]])
    rows.append(["A004", *rows[0][1:3], BAD_ID, *rows[0][4:]])
    households = write_csv(tmp_path / "households.csv", HEADER, rows)

    report = failure(households)

    assert report.splitlines() == [
        "2 problems found; nothing was imported.",
        "households.csv, row 3, column key_group, value “五保户”: "
        "Not a known key group. Known groups: minimum_income (低保户).",
        f"households.csv, row 5, column head_id_number, value “{BAD_ID}”: "
        f"The check character of the ID number is wrong (expected {ID_ZHANG[17]}).",
    ]
    assert_nothing_written()
    # The same file mended imports whole.
    rows[1][HEADER.index("key_group")] = ""
    rows[3][HEADER.index("head_id_number")] = ""
    run(write_csv(tmp_path / "households.csv", HEADER, rows))
    assert Household.objects.count() == House.objects.count() == 4


def test_every_problem_of_both_files_is_reported_with_the_file_header_as_written(
    tmp_path, regions, groups
):
    rows = with_cell(0, "longitude", "")  # latitude without longitude
    rows[1][CHINESE_HEADER.index("层数")] = "2.5"
    households = write_csv(tmp_path / "households.csv", CHINESE_HEADER, rows)
    members = write_csv(
        tmp_path / "members.csv",
        CHINESE_MEMBER_HEADER,
        [
            ["A001", "张三", "户主", ID_ZHANG, ""],
            ["A009", "王芳", "配偶", ID_WANG, ""],
            ["A001", "张三", "户主", ID_ZHANG, ""],
            ["A002", "李小", "侄子", "", "六级"],
        ],
    )

    report = failure(households, "--members", members)

    assert report.splitlines() == [
        "6 problems found; nothing was imported.",
        "households.csv, row 2, column 经度, value “”: "
        "Give both longitude and latitude, or leave both blank.",
        "households.csv, row 3, column 层数, value “2.5”: “2.5” value must be an integer.",
        "members.csv, row 3, column 档案编号, value “A009”: "
        "The archive number A009 is neither in the households file nor in the database.",
        "members.csv, row 4, column 身份证号, value “" + ID_ZHANG + "”: "
        "The same member of household A001 is also in row 2.",
        "members.csv, row 5, column 与户主关系, value “侄子”: Not a known value. Use one of: "
        "head (Head of household), spouse (Spouse), child (Child), child_in_law (Son- or "
        "daughter-in-law), grandchild (Grandchild), parent (Parent), grandparent "
        "(Grandparent), sibling (Sibling), other (Other).",
        "members.csv, row 5, column 残疾等级, value “六级”: Not a known value. Use one of: "
        "1 (Grade 1 (most severe)), 2 (Grade 2), 3 (Grade 3), 4 (Grade 4).",
    ]
    assert_nothing_written()


def test_a_bad_member_id_number_imports_nothing(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(
        tmp_path / "members.csv", MEMBER_HEADER, [["A001", "王芳", "配偶", "52039919650930", ""]]
    )

    report = failure(households, "--members", members)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "members.csv, row 2, column id_number, value “52039919650930”: "
        "An ID number has 18 characters; this one has 14."
    )
    assert_nothing_written()


def test_a_missing_required_column_names_the_column_and_the_headers_found(tmp_path, regions):
    households = write_csv(
        tmp_path / "households.csv", ["档案编号", "户主姓名"], [["A001", "张三"]]
    )

    report = failure(households)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "households.csv: The required column village_code is missing (accepted headers: "
        "village_code, 村代码, 行政村代码, 村编码, 村区划代码, 行政村编码). "
        "The file has: 档案编号, 户主姓名."
    )


def test_a_csv_that_is_not_utf8_is_refused_with_advice(tmp_path, regions):
    path = tmp_path / "households.csv"
    path.write_bytes(",".join(CHINESE_HEADER).encode("gbk") + b"\n")

    report = failure(path)

    assert report == (
        "1 problem found; nothing was imported.\n"
        "households.csv: The file is not UTF-8 text. Save it as “CSV UTF-8” (or as .xlsx) "
        "and import it again."
    )


def test_a_bad_file_exits_with_status_1(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, with_cell(0, "storeys", "0"))

    # run_from_argv turns a CommandError into sys.exit(returncode); it also closes every
    # database connection, which the test database cannot survive, so the error is checked.
    with pytest.raises(CommandError) as caught:
        run(households)

    assert caught.value.returncode == 1
    assert str(caught.value).endswith(
        "households.csv, row 2, column storeys, value “0”: "
        "Ensure this value is greater than or equal to 1."
    )
    assert_nothing_written()


def test_dry_run_reports_counts_and_writes_nothing(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(tmp_path / "members.csv", MEMBER_HEADER, MEMBER_ROWS)

    output = run(households, "--members", members, "--dry-run")

    assert output == (
        "Nothing was written. Households that would be imported: 2 new, 0 updated. "
        "Members: 3 new, 0 updated."
    )
    assert_nothing_written()


def test_dry_run_counts_updates_of_existing_rows(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(tmp_path / "members.csv", MEMBER_HEADER, MEMBER_ROWS)
    run(households, "--members", members)
    write_csv(households, HEADER, with_cell(0, "head_name", "张三丰"))

    output = run(households, "--members", members, "--dry-run")

    assert output == (
        "Nothing was written. Households that would be imported: 0 new, 2 updated. "
        "Members: 0 new, 3 updated."
    )
    assert Household.objects.get(archive_no="A001").head_name == "张三"


def test_dry_run_of_a_bad_file_prints_the_report_and_fails(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, with_cell(1, "grade", "E"))

    report = failure(households, "--dry-run")

    assert report.splitlines()[1] == (
        "households.csv, row 3, column grade, value “E”: Not a known value. Use one of: "
        "A (A: safe), B (B: basically safe), C (C: partly dangerous), "
        "D (D: dangerous as a whole)."
    )
    assert_nothing_written()


def test_reimport_updates_in_place_and_never_duplicates(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(tmp_path / "members.csv", MEMBER_HEADER, MEMBER_ROWS)
    run(households, "--members", members)
    house_ids = set(House.objects.values_list("pk", flat=True))
    member_ids = set(FamilyMember.objects.values_list("pk", flat=True))
    first = Household.objects.get(archive_no="A001")

    rows = with_cell(0, "head_name", "张三丰")
    rows[0][HEADER.index("grade")] = "D级"
    rows[0][HEADER.index("storeys")] = "2"
    write_csv(households, HEADER, rows)
    write_csv(
        members,
        MEMBER_HEADER,
        [
            ["A001", "张三", "户主", ID_ZHANG, ""],
            ["A001", "王芳", "配偶", ID_WANG, "一级"],
            ["A002", "李小", "孙子", "", ""],
        ],
    )
    output = run(households, "--members", members)

    assert output == "Households: 0 created, 2 updated. Members: 0 created, 3 updated."
    assert Household.objects.count() == 2
    assert set(House.objects.values_list("pk", flat=True)) == house_ids
    assert set(FamilyMember.objects.values_list("pk", flat=True)) == member_ids
    a001 = Household.objects.get(archive_no="A001")
    assert a001.head_name == "张三丰"
    assert (a001.pk, a001.created_at) == (first.pk, first.created_at)
    assert a001.updated_at > first.updated_at
    house = a001.houses.get()
    assert (house.safety_grade, house.storeys) == (SafetyGrade.D, 2)
    assert FamilyMember.objects.get(name="王芳").disability_level == "1"
    assert FamilyMember.objects.get(name="李小").relation == "grandchild"


def test_reimport_matches_a_member_recorded_without_id_number_by_name(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    members = write_csv(tmp_path / "members.csv", MEMBER_HEADER, [["A002", "李小", "子女", "", ""]])
    run(households, "--members", members)
    id_number = idnumbers.make("520399", datetime.date(1995, 2, 3), 42)
    write_csv(members, MEMBER_HEADER, [["A002", "李小", "子女", id_number, ""]])

    output = run(households, "--members", members)

    assert output == "Households: 0 created, 2 updated. Members: 0 created, 1 updated."
    member = FamilyMember.objects.get()
    assert (member.id_number, member.sex, member.birth_date) == (
        id_number,
        "F",
        datetime.date(1995, 2, 3),
    )


def test_existing_household_keeps_its_current_house_or_gets_one(tmp_path, regions, groups):
    with_house = HouseFactory(
        household=HouseholdFactory(archive_no="A001", village=regions["village1"]),
        safety_grade=SafetyGrade.A,
        renovation_status="completed",
    )
    HouseholdFactory(archive_no="A002", village=regions["village2"])  # no house yet
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)

    output = run(households)

    assert output == "Households: 0 created, 2 updated. Members: 0 created, 0 updated."
    with_house.refresh_from_db()
    assert (with_house.safety_grade, with_house.renovation_status) == (SafetyGrade.C, "completed")
    assert House.objects.filter(household__archive_no="A002", is_current=True).count() == 1
    assert House.objects.count() == 2


def test_columns_left_out_of_the_file_are_left_unchanged(tmp_path, regions, groups):
    household = HouseholdFactory(archive_no="A001", village=regions["village1"], phone="139")
    HouseFactory(household=household, safety_grade=SafetyGrade.D)
    households = write_csv(
        tmp_path / "households.csv",
        ["archive_no", "village_code", "head_name"],
        [["A001", "520399100200", "张三"]],
    )

    run(households)

    household.refresh_from_db()
    assert (household.head_name, household.phone) == ("张三", "139")
    assert household.location.coords == (107.905, 27.205)
    assert household.houses.get().safety_grade == SafetyGrade.D


def test_a_short_row_reads_its_missing_cells_as_blank_and_extra_cells_are_ignored(
    tmp_path, regions, groups
):
    """A spreadsheet saved as CSV drops a row's empty trailing cells, and may add cells past
    the last header: neither shifts or fills a column."""
    households = write_csv(
        tmp_path / "households.csv",
        ["archive_no", "unknown", "village_code", "head_name", "phone", "grade"],
        [
            ["A001", "x", "520399100200", "张三"],  # no phone, no grade
            ["A002", "", "520399101200", "李四", "139", "B", "extra", "C"],
        ],
    )

    run(households)

    rows = Household.objects.order_by("archive_no").values_list(
        "archive_no", "head_name", "phone", "houses__safety_grade"
    )
    assert list(rows) == [("A001", "张三", "", ""), ("A002", "李四", "139", "B")]


def test_gcj02_coordinates_are_stored_as_wgs84(tmp_path, regions, groups):
    # The Shanghai pair published by eviltransform (see test_coords.py).
    rows = with_cell(0, "longitude", "121.531541859215")
    rows[0][HEADER.index("latitude")] = "31.17530398364597"
    households = write_csv(tmp_path / "households.csv", HEADER, rows)

    run(households, "--crs", "gcj02")

    household = Household.objects.get(archive_no="A001")
    lon, lat = household.location.coords
    assert abs(lon - 121.5272106) < 1e-6
    assert abs(lat - 31.1774276) < 1e-6
    assert household.location_source == LocationSource.GCJ02_MAP


def test_cgcs2000_coordinates_are_stored_unchanged(tmp_path, regions, groups):
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)

    run(households, "--crs", "cgcs2000")

    household = Household.objects.get(archive_no="A001")
    assert household.location.coords == pytest.approx((107.91, 27.21), abs=1e-12)
    assert household.location_source == LocationSource.IMPORTED


# --- hostile coordinates and dates (issue 11) -------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "problems"),
    [
        pytest.param(
            "500",
            "27.21",
            [
                "households.csv, row 2, column longitude, value “500”: "
                "A longitude is between -180 and 180."
            ],
            id="longitude-500",
        ),
        pytest.param(
            "nan",
            "27.21",
            ["households.csv, row 2, column longitude, value “nan”: Not a number."],
            id="nan",
        ),
        pytest.param(
            "27.21",
            "107.91",
            [
                "households.csv, row 2, column latitude, value “107.91”: "
                "A latitude is between -90 and 90.",
                "households.csv, row 2: Longitude 27.21 and latitude 107.91 read the other way "
                "round are a place in China: are the two columns swapped?",
            ],
            id="swapped",
        ),
    ],
)
def test_an_impossible_location_refuses_the_file_and_says_why(
    tmp_path, regions, groups, lon, lat, problems
):
    rows = with_cell(0, "longitude", lon)
    rows[0][HEADER.index("latitude")] = lat
    households = write_csv(tmp_path / "households.csv", HEADER, rows)

    report = failure(households)

    count = len(problems)
    heading = f"{count} problem{'s' if count > 1 else ''} found; nothing was imported."
    assert report.splitlines() == [heading, *problems]
    assert_nothing_written()


def test_a_location_outside_china_is_imported_with_a_warning(tmp_path, regions, groups):
    rows = with_cell(0, "longitude", "2.35")  # Paris
    rows[0][HEADER.index("latitude")] = "48.85"
    households = write_csv(tmp_path / "households.csv", HEADER, rows)
    err = StringIO()

    call_command("import_households", str(households), stdout=StringIO(), stderr=err)

    assert err.getvalue().strip() == (
        "households.csv, row 2: The location (longitude 2.35, latitude 48.85) is not in China; "
        "imported all the same. Check it, and whether longitude and latitude are swapped."
    )
    assert Household.objects.get(archive_no="A001").location.coords == (2.35, 48.85)


def test_a_house_built_in_a_future_year_refuses_the_file(tmp_path, regions, groups):
    next_year = str(datetime.date.today().year + 1)
    households = write_csv(
        tmp_path / "households.csv", HEADER, with_cell(0, "year_built", next_year)
    )

    report = failure(households)

    assert report == (
        "1 problem found; nothing was imported.\n"
        f"households.csv, row 2, column year_built, value “{next_year}”: "
        f"The year {next_year} is in the future."
    )
    assert_nothing_written()


def test_coordinates_are_stored_to_the_last_bit_and_a_reimport_moves_them(
    tmp_path, regions, groups
):
    """The COPY writes a point from the parsed floats (no GEOS object on the way): exact."""
    rows = with_cell(0, "longitude", "107.91234567890123")
    rows[0][HEADER.index("latitude")] = "27.212345678901234"
    run(write_csv(tmp_path / "first.csv", HEADER, rows))
    a001 = Household.objects.get(archive_no="A001")
    assert a001.location.coords == (float("107.91234567890123"), float("27.212345678901234"))
    assert a001.location.srid == 4326

    rows[0][HEADER.index("longitude")] = "107.95"
    rows[1][HEADER.index("longitude")] = "108.01"
    rows[1][HEADER.index("latitude")] = "27.21"
    assert run(write_csv(tmp_path / "second.csv", HEADER, rows)).startswith(
        "Households: 0 created, 2 updated."
    )
    located = dict(Household.objects.values_list("archive_no", "location"))
    assert located["A001"].coords == (107.95, float("27.212345678901234"))
    assert located["A002"].coords == (108.01, 27.21)
    assert Household.objects.get(archive_no="A002").location_source == LocationSource.IMPORTED


def test_an_existing_household_is_updated_and_a_new_one_created_in_one_import(
    tmp_path, regions, groups
):
    """New rows are copied in with ids of their own; existing ones updated where they are."""
    old = HouseholdFactory(archive_no="A002", head_name="旧名", village=regions["village1"])
    run(write_csv(tmp_path / "households.csv", HEADER, ROWS))

    a002 = Household.objects.get(archive_no="A002")
    assert (a002.pk, a002.head_name, a002.village.code) == (old.pk, "李四", "520399101200")
    assert a002.created_at == old.created_at
    assert a002.updated_at > old.updated_at
    a001 = Household.objects.get(archive_no="A001")
    assert a001.pk > old.pk
    assert Household.objects.count() == 2
    assert [h.history_type for h in a001.history.all()] == ["+"]
    assert [h.history_type for h in a002.history.order_by("history_date")] == ["+", "~"]


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="planner statistics are PostgreSQL's"
)
def test_a_big_import_analyses_its_tables_before_the_map_is_refreshed(tmp_path, regions, groups):
    """1,200 households into empty tables: the statistics say so before the map refresh
    plans its joins (and so after the import, in the same transaction)."""
    blank = dict.fromkeys(HEADER, "")
    rows = [
        list(
            {
                **blank,
                "archive_no": f"B{i:05d}",
                "village_code": "520399100200",
                "head_name": f"户主{i}",
                "longitude": "107.91",
                "latitude": "27.21",
                "grade": "C",
            }.values()
        )
        for i in range(1200)
    ]
    run(write_csv(tmp_path / "households.csv", HEADER, rows))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s) ORDER BY 1",
            ["housing_house", "housing_household"],
        )
        assert cursor.fetchall() == [("housing_house", 1200), ("housing_household", 1200)]
        cursor.execute(
            "SELECT attname FROM pg_stats WHERE tablename = 'housing_household' "
            "AND attname IN ('id', 'village_id')"
        )
        assert sorted(name for (name,) in cursor.fetchall()) == ["id", "village_id"]
    assert House.objects.filter(safety_grade="C").count() == 1200


def _import_racing(path, other_session_writes) -> str:
    """Run the import of `path` while a second PostgreSQL session holds uncommitted writes
    (`other_session_writes(cursor)`) that the import must wait for; that session commits
    once the import is seen waiting. The import's outcome: "imported" or its error."""
    import threading

    import psycopg

    from housing.importers import ImportFailed, import_households

    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
    outcome = {}
    try:
        with other.cursor() as cursor:
            other_session_writes(cursor)

        def run_import():
            try:
                import_households(path=path)
                outcome["result"] = "imported"
            except ImportFailed as error:
                outcome["result"] = str(error)
            finally:
                connection.close()

        thread = threading.Thread(target=run_import)
        thread.start()
        thread.join(timeout=3)
        assert thread.is_alive(), "the import waits for the other session's rows"
        other.commit()
        thread.join(timeout=60)
    finally:
        other.close()
    return outcome["result"]


@pytest.mark.django_db(transaction=True)
def test_a_household_added_by_someone_else_during_the_import_fails_it_cleanly(
    tmp_path, regions, groups
):
    # New households are COPY'd in. Another session adds A001 while the import runs: its
    # uncommitted row holds the COPY until it commits, then the archive number is taken.
    # The import says so, and writes nothing.
    if connection.vendor != "postgresql":
        pytest.skip("COPY and its unique check are the PostgreSQL path")
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)
    template = HouseholdFactory(archive_no="TEMPLATE", village=regions["village1"])
    columns = [f.column for f in Household._meta.concrete_fields if not f.primary_key]
    chosen = [
        "'A001'" if c == "archive_no" else "'别人'" if c == "head_name" else c for c in columns
    ]

    def add_a001(cursor):
        cursor.execute(
            f"INSERT INTO housing_household ({', '.join(columns)}) "
            f"SELECT {', '.join(chosen)} FROM housing_household WHERE archive_no = 'TEMPLATE'"
        )

    result = _import_racing(households, add_a001)
    assert "added by someone else while it was being imported" in result
    assert "nothing was imported" in result.lower()
    assert list(
        Household.objects.order_by("archive_no").values_list("archive_no", "head_name")
    ) == [
        ("A001", "别人"),
        ("TEMPLATE", template.head_name),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_household_deleted_by_someone_else_during_the_import_fails_it_cleanly(
    tmp_path, regions, groups
):
    # A001 is on record; another session deletes it (its map row first) while the import
    # runs: the import's update of A001 waits for that session, then finds nothing to
    # update, and the house it writes for A001 has no household. The import says so and
    # writes nothing.
    if connection.vendor != "postgresql":
        pytest.skip("the other session is a second PostgreSQL connection")
    doomed = HouseholdFactory(archive_no="A001", village=regions["village1"], head_name="旧")
    kept = HouseholdFactory(archive_no="KEPT", village=regions["village1"])
    households = write_csv(tmp_path / "households.csv", HEADER, ROWS)

    def delete_a001(cursor):
        for table in ("maps_mappoint", "housing_familymember", "housing_house"):
            cursor.execute(f"DELETE FROM {table} WHERE household_id = %s", [doomed.pk])
        cursor.execute("DELETE FROM housing_household WHERE id = %s", [doomed.pk])

    result = _import_racing(households, delete_a001)
    assert "changed by someone else while this file was being imported" in result
    assert "nothing was imported" in result.lower()
    assert list(Household.objects.values_list("archive_no", flat=True)) == [kept.archive_no]
    assert House.objects.filter(household__archive_no__in=["A002", "A003"]).count() == 0
