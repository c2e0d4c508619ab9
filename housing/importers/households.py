"""Import households, their current houses and family members from CSV or XLSX.

Two phases. First every row of both files is checked against the model's rules and the
database (villages, key groups, archive numbers); if anything is wrong, ImportFailed lists
every problem and nothing is written. Then everything is written in one transaction with
bulk statements: a county's 100,000 households are a few hundred statements, not 300,000.
Every row written is also recorded in its model's history (created or changed), in bulk too.
"""

import datetime
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from housing import idnumbers
from housing.coords import out_of_china
from housing.history import CHANGED, CREATED, history_snapshot
from housing.importers import pgcopy
from housing.importers.batching import UPDATE_BATCH, lookup, matching
from housing.importers.choices import choice_list, choice_value
from housing.importers.readers import Table, read_table, value_key
from housing.importers.report import ImportFailed, Problem, messages_of
from housing.models import (
    FamilyMember,
    House,
    Household,
    KeyGroup,
    LocationSource,
    Region,
    RegionLevel,
    Relation,
)
from housing.services import derive_from_id_number, wgs84_from
from housing.signals import households_changed

CRS_CHOICES = ("wgs84", "gcj02", "cgcs2000")
# The change reason on the history rows this import writes.
HISTORY_REASON = "import_households"

HOUSEHOLD_COLUMNS = {
    "archive_no": ("archive_no", "档案编号", "档案号", "户档案编号"),
    "village_code": ("village_code", "村代码", "行政村代码", "村编码", "村区划代码", "行政村编码"),
    "head_name": ("head_name", "户主姓名", "户主"),
    "head_id_number": ("head_id_number", "户主身份证号", "户主身份证号码", "户主身份证"),
    "phone": ("phone", "联系电话", "电话", "手机号码"),
    "address": ("address", "住址", "地址", "家庭住址"),
    "longitude": ("longitude", "lon", "lng", "经度"),
    "latitude": ("latitude", "lat", "纬度"),
    "key_group": ("key_group", "重点对象类型", "重点对象", "对象类型"),
    "structure_type": ("structure_type", "结构类型", "房屋结构"),
    "storeys": ("storeys", "stories", "floors", "层数", "房屋层数"),
    "floor_area": ("floor_area", "建筑面积", "面积"),
    "year_built": ("year_built", "建造年份", "建房年份", "建造年代"),
    "grade": ("grade", "safety_grade", "鉴定等级", "安全等级", "危房等级"),
}
HOUSEHOLD_REQUIRED = ("archive_no", "village_code", "head_name")

MEMBER_COLUMNS = {
    "archive_no": HOUSEHOLD_COLUMNS["archive_no"],
    "name": ("name", "姓名", "成员姓名"),
    "relation": ("relation", "与户主关系", "关系"),
    "id_number": ("id_number", "身份证号", "身份证号码", "公民身份号码"),
    "disability": ("disability", "disability_level", "残疾等级", "残疾级别"),
    "phone": ("phone", "联系电话", "电话"),
}
MEMBER_REQUIRED = ("archive_no", "name")

# File column -> House field, for the columns that describe the house.
HOUSE_COLUMNS = {
    "structure_type": "structure_type",
    "storeys": "storeys",
    "floor_area": "floor_area",
    "year_built": "year_built",
    "grade": "safety_grade",
}


@dataclass
class HouseholdImportResult:
    households: int = 0
    households_created: int = 0
    households_updated: int = 0
    houses_created: int = 0
    houses_updated: int = 0
    members: int = 0
    members_created: int = 0
    members_updated: int = 0
    dry_run: bool = False
    # Imported all the same, but worth a look (a location outside China).
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _HouseholdRow:
    row: int
    archive_no: str
    village_id: int
    head_name: str
    head_id_number: str
    phone: str
    address: str
    location: tuple[float, float] | None  # WGS84 (lon, lat), as stored
    key_group_id: int | None
    house: dict = field(default_factory=dict)  # House field -> value, present columns only


@dataclass
class _MemberRow:
    row: int
    archive_no: str
    name: str
    relation: str  # "" when the cell is blank
    id_number: str
    sex: str
    birth_date: datetime.date | None
    disability_level: str | None  # None when the file has no such column
    phone: str | None


class _Checker:
    """Collects problems for one table; each check returns the clean value or None."""

    def __init__(self, table: Table, problems: list[Problem]):
        self.table = table
        self.problems = problems
        # (field, cell text) -> clean value or the error's messages: a county's file
        # repeats the same storeys, years and areas thousands of times, and Field.clean
        # with its validators was a fifth of the checking.
        self.cleaned: dict[tuple, tuple[bool, object]] = {}
        self.fields: dict[tuple, tuple] = {}  # (model, name) -> (field, plain text's length)
        self.today = datetime.date.today()  # the birth dates' limit, read once a file

    def add(self, row: int, column: str, value: str, message) -> None:
        self.problems.append(self.table.problem(row, column, value, str(message)))

    def required(self, row: int, column: str, value: str) -> str | None:
        if not value:
            self.add(row, column, value, _("A value is required."))
            return None
        return value

    def model_field(self, row: int, column: str, value: str, model, name: str):
        """Clean `value` by the model field's own rules (type, length, range validators)."""
        spec = self.fields.get((model, name))
        if spec is None:
            model_field = model._meta.get_field(name)
            plain = model_field.get_internal_type() == "CharField" and not model_field.choices
            spec = (model_field, model_field.max_length if plain else None)
            self.fields[(model, name)] = spec
        model_field, text_length = spec
        if value == "":
            return None if model_field.null else ""
        if text_length is not None and len(value) <= text_length and "\x00" not in value:
            # What CharField.clean would accept, without its per-call overhead (it is
            # called for every text cell of 100,000-row files).
            return value
        # Keyed by (model, name), whose hash is C's: a Field's own __hash__ is Python's.
        key = (model, name, value)
        known = self.cleaned.get(key)
        if known is None:
            try:
                known = (True, model_field.clean(value, None))
            except ValidationError as exc:
                known = (False, messages_of(exc))
            self.cleaned[key] = known
        clean, result = known
        if not clean:
            self.add(row, column, value, result)
            return None
        return result

    def id_number(self, row: int, column: str, value: str) -> str | None:
        number = idnumbers.normalize(value)
        if not number:
            return ""
        try:
            idnumbers.parse(number, today=self.today)
        except ValidationError as exc:
            self.add(row, column, value, messages_of(exc))
            return None
        return number

    def choice(self, row: int, column: str, value: str, kind: str) -> str | None:
        if not value:
            return ""
        stored = choice_value(kind, value)
        if stored is None:
            self.add(
                row,
                column,
                value,
                _("Not a known value. Use one of: %(choices)s.") % {"choices": choice_list(kind)},
            )
        return stored

    def coordinate(self, row: int, column: str, value: str, limit: int) -> float | None:
        try:
            number = float(value)
        except ValueError:
            self.add(row, column, value, _("Not a number."))
            return None
        if not math.isfinite(number):
            self.add(row, column, value, _("Not a number."))
            return None
        if not -limit <= number <= limit:
            if limit == 180:
                message = _("A longitude is between -180 and 180.")
            else:
                message = _("A latitude is between -90 and 90.")
            self.add(row, column, value, message)
            return None
        return number


def _key_groups() -> tuple[dict[str, int], str]:
    """Cell text -> key group id, by code or by name (the data migration names them in
    Chinese); and the groups as a problem lists them ("code (name), …")."""
    rows = list(KeyGroup.objects.values_list("pk", "code", "name"))
    groups = {value_key(name): pk for pk, _code, name in rows}
    # A code wins over a name that happens to be spelled the same.
    groups.update({value_key(code): pk for pk, code, _name in rows})
    return groups, ", ".join(f"{code} ({name})" for _pk, code, name in rows)


def _outside_china(table: Table, row: int, lon: str, lat: str) -> Problem:
    return Problem(
        file=table.file,
        row=row,
        message=_(
            "The location (longitude %(lon)s, latitude %(lat)s) is not in China; imported "
            "all the same. Check it, and whether longitude and latitude are swapped."
        )
        % {"lon": lon, "lat": lat},
    )


def _hint_swapped(table: Table, row: int, lon: str, lat: str, problems: list[Problem]) -> None:
    """After an out-of-range coordinate: say so if the other way round is a place in China."""
    try:
        swapped_lon, swapped_lat = float(lat), float(lon)
    except ValueError:
        return
    if math.isfinite(swapped_lon + swapped_lat) and not out_of_china(swapped_lon, swapped_lat):
        problems.append(
            Problem(
                file=table.file,
                row=row,
                message=_(
                    "Longitude %(lon)s and latitude %(lat)s read the other way round are a "
                    "place in China: are the two columns swapped?"
                )
                % {"lon": lon, "lat": lat},
            )
        )


# The cells of a households row, in the order _checked_households unpacks them.
_HOUSEHOLD_CELLS = tuple(HOUSEHOLD_COLUMNS)


def _checked_households(
    table: Table, *, crs: str, problems: list[Problem], warnings: list[Problem]
) -> Iterator[_HouseholdRow]:
    """Each row without a problem, checked, as soon as it is (the problems of the others go
    to `problems`): the import writes a row while the next ones are checked."""
    this_year = timezone.localdate().year
    check = _Checker(table, problems)
    cell = table.cell
    villages = {
        code: (pk, level, name)
        for code, pk, level, name in lookup(
            Region.objects.all(),
            "code",
            {cell(cells, "village_code") for _n, cells in table.rows},
            "code",
            "pk",
            "level",
            "name",
        )
    }
    groups, known_groups = _key_groups() if table.has("key_group") else ({}, "")
    has_location = table.has("longitude") and table.has("latitude")
    seen: dict[str, int] = {}
    # Each row's cells picked at once (a column the file lacks reads the blank cell after
    # the last): cell() per cell was 1.4 million calls for 100,000 rows.
    width = max(table.columns.values(), default=-1) + 1
    pick = operator.itemgetter(*(table.columns.get(name, width) for name in _HOUSEHOLD_CELLS))
    house_columns = [c for c in ("storeys", "floor_area", "year_built") if table.has(c)]

    # The generator's work only: everything read from the database is read above, before
    # the caller starts writing (a COPY in progress has the connection to itself).

    def checked_rows():
        for number, cells in table.rows:
            before = len(problems)
            padded = cells[:width]
            padded.extend([""] * (width + 1 - len(padded)))
            (
                archive_text,
                village_text,
                head_name_text,
                head_id_text,
                phone_text,
                address_text,
                lon_text,
                lat_text,
                group_text,
                structure_text,
                storeys_text,
                floor_area_text,
                year_built_text,
                grade_text,
            ) = pick(padded)
            archive_no = check.required(number, "archive_no", archive_text)
            if archive_no is not None:
                archive_no = check.model_field(
                    number, "archive_no", archive_no, Household, "archive_no"
                )
            if archive_no:
                if archive_no in seen:
                    check.add(
                        number,
                        "archive_no",
                        archive_no,
                        _("The archive number %(archive_no)s is also in row %(row)d.")
                        % {"archive_no": archive_no, "row": seen[archive_no]},
                    )
                else:
                    seen[archive_no] = number

            village_code = check.required(number, "village_code", village_text)
            village_id = None
            if village_code is not None:
                found = villages.get(village_code)
                if found is None:
                    check.add(
                        number,
                        "village_code",
                        village_code,
                        _("No region has the code %(code)s; import the regions first.")
                        % {"code": village_code},
                    )
                elif found[1] != RegionLevel.VILLAGE:
                    check.add(
                        number,
                        "village_code",
                        village_code,
                        _("%(code)s is a %(level)s (%(name)s), not a village.")
                        % {
                            "code": village_code,
                            "level": RegionLevel(found[1]).label,
                            "name": found[2],
                        },
                    )
                else:
                    village_id = found[0]

            head_name = check.required(number, "head_name", head_name_text)
            if head_name is not None:
                head_name = check.model_field(
                    number, "head_name", head_name, Household, "head_name"
                )
            head_id = check.id_number(number, "head_id_number", head_id_text)
            phone = check.model_field(number, "phone", phone_text, Household, "phone")
            address = check.model_field(number, "address", address_text, Household, "address")

            location = None
            if has_location:
                if lon_text and lat_text:
                    lon = check.coordinate(number, "longitude", lon_text, 180)
                    lat = check.coordinate(number, "latitude", lat_text, 90)
                    if lon is not None and lat is not None:
                        location = wgs84_from(lon, lat, crs=crs)
                        if out_of_china(lon, lat):
                            warnings.append(_outside_china(table, number, lon_text, lat_text))
                    else:
                        _hint_swapped(table, number, lon_text, lat_text, problems)
                elif lon_text or lat_text:
                    blank = "latitude" if lon_text else "longitude"
                    check.add(
                        number,
                        blank,
                        "",
                        _("Give both longitude and latitude, or leave both blank."),
                    )

            key_group_id = None
            if group_text:
                key_group_id = groups.get(value_key(group_text))
                if key_group_id is None:
                    check.add(
                        number,
                        "key_group",
                        group_text,
                        _("Not a known key group. Known groups: %(groups)s.")
                        % {"groups": known_groups},
                    )

            house = {}
            if table.has("structure_type"):
                house["structure_type"] = check.choice(
                    number, "structure_type", structure_text, "structure"
                )
            texts = {
                "storeys": storeys_text,
                "floor_area": floor_area_text,
                "year_built": year_built_text,
            }
            for column in house_columns:
                house[column] = check.model_field(number, column, texts[column], House, column)
            built = house.get("year_built")
            if built and built > this_year:
                check.add(
                    number,
                    "year_built",
                    year_built_text,
                    _("The year %(year)d is in the future.") % {"year": built},
                )
            if table.has("grade"):
                house["safety_grade"] = check.choice(number, "grade", grade_text, "grade")

            if len(problems) == before:
                yield _HouseholdRow(
                    row=number,
                    archive_no=archive_no,
                    village_id=village_id,
                    head_name=head_name,
                    head_id_number=head_id,
                    phone=phone,
                    address=address,
                    location=location,
                    key_group_id=key_group_id,
                    house=house,
                )

    return checked_rows()


def _check_members(
    table: Table, *, household_archive_nos: set[str], problems: list[Problem]
) -> list[_MemberRow]:
    check = _Checker(table, problems)
    cell = table.cell
    elsewhere = {cell(cells, "archive_no") for _n, cells in table.rows} - household_archive_nos
    in_database = {
        archive_no
        for (archive_no,) in lookup(Household.objects.all(), "archive_no", elsewhere, "archive_no")
    }
    seen: dict[tuple, int] = {}
    rows: list[_MemberRow] = []
    for number, cells in table.rows:
        before = len(problems)
        archive_no = check.required(number, "archive_no", cell(cells, "archive_no"))
        if archive_no and archive_no not in household_archive_nos and archive_no not in in_database:
            check.add(
                number,
                "archive_no",
                archive_no,
                _(
                    "The archive number %(archive_no)s is neither in the households file "
                    "nor in the database."
                )
                % {"archive_no": archive_no},
            )
        name = check.required(number, "name", cell(cells, "name"))
        if name is not None:
            name = check.model_field(number, "name", name, FamilyMember, "name")
        relation = check.choice(number, "relation", cell(cells, "relation"), "relation")
        id_number = check.id_number(number, "id_number", cell(cells, "id_number"))
        disability = None
        if table.has("disability"):
            disability = check.choice(number, "disability", cell(cells, "disability"), "disability")
        phone = None
        if table.has("phone"):
            phone = check.model_field(number, "phone", cell(cells, "phone"), FamilyMember, "phone")

        if archive_no and name and id_number is not None:
            key = (archive_no, "id", id_number) if id_number else (archive_no, "name", name)
            if key in seen:
                check.add(
                    number,
                    "id_number" if id_number else "name",
                    id_number or name,
                    _("The same member of household %(archive_no)s is also in row %(row)d.")
                    % {"archive_no": archive_no, "row": seen[key]},
                )
            else:
                seen[key] = number

        if len(problems) == before:
            sex, birth_date = derive_from_id_number(id_number)
            rows.append(
                _MemberRow(
                    row=number,
                    archive_no=archive_no,
                    name=name,
                    relation=relation,
                    id_number=id_number,
                    sex=sex,
                    birth_date=birth_date,
                    disability_level=disability,
                    phone=phone,
                )
            )
    return rows


def _match_members(
    rows: list[_MemberRow], household_ids: dict[str, int]
) -> list[tuple[_MemberRow, FamilyMember | None]]:
    """Pair each row with the member it updates: same ID number, else same name.

    A row with an ID number may also claim a same-named member recorded without one, so
    that adding ID numbers to a register updates those members instead of doubling them.
    """
    existing_ids = [household_ids[r.archive_no] for r in rows if r.archive_no in household_ids]
    by_id: dict[tuple[int, str], FamilyMember] = {}
    by_name: dict[tuple[int, str], FamilyMember] = {}
    by_name_without_id: dict[tuple[int, str], FamilyMember] = {}
    for part in matching(FamilyMember.objects.order_by("pk"), "household_id", existing_ids):
        for member in part:
            if member.id_number:
                by_id.setdefault((member.household_id, member.id_number), member)
            else:
                by_name_without_id.setdefault((member.household_id, member.name), member)
            by_name.setdefault((member.household_id, member.name), member)
    pairs = []
    claimed: set[int] = set()
    for row in rows:
        household_id = household_ids.get(row.archive_no)
        match = None
        if household_id is not None:
            if row.id_number:
                match = by_id.get((household_id, row.id_number)) or by_name_without_id.get(
                    (household_id, row.name)
                )
            else:
                match = by_name.get((household_id, row.name))
        if match is not None and match.pk in claimed:
            match = None  # two rows may not both update the same person
        if match is not None:
            claimed.add(match.pk)
        pairs.append((row, match))
    return pairs


def import_households(
    *,
    path,
    members_path=None,
    crs: str = "wgs84",
    dry_run: bool = False,
) -> HouseholdImportResult:
    """Check both files completely, then upsert households, houses and members.

    Households are matched by archive number, the current house of each is updated in
    place (or created), members by (household, ID number) or, without one, (household,
    name). A column missing from the file leaves that field unchanged on existing rows.
    Raises ImportFailed with every problem, having written nothing.
    """
    if crs not in CRS_CHOICES:
        raise ValueError(f"crs must be one of {CRS_CHOICES}, not {crs!r}")
    households_table = read_table(
        Path(path), aliases=HOUSEHOLD_COLUMNS, required=HOUSEHOLD_REQUIRED
    )
    members_table = None
    if members_path:
        members_table = read_table(
            Path(members_path), aliases=MEMBER_COLUMNS, required=MEMBER_REQUIRED
        )

    try:
        return _import(households_table, members_table, path=path, crs=crs, dry_run=dry_run)
    except IntegrityError as error:
        # New households are COPY'd in: one added by another session meanwhile (an import
        # or the admin) with an archive number of this file breaks the unique constraint.
        # The transaction is rolled back; say so instead of a database error.
        # A household deleted meanwhile breaks a foreign key of its house or members the
        # same way. Either way nothing was written.
        constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", "") or ""
        if "archive_no" in constraint or "archive_no" in str(error):
            message = _(
                "Households with archive numbers of this file were added by someone "
                "else while it was being imported. Nothing was imported: run the "
                "import again."
            )
        else:
            message = _(
                "The registry was changed by someone else while this file was being "
                "imported (a household of the file was added or deleted). Nothing was "
                "imported: run the import again."
            )
        raise ImportFailed([Problem(file=Path(path).name, message=message)]) from error


def _import(households_table, members_table, *, path, crs, dry_run) -> HouseholdImportResult:
    with transaction.atomic():
        problems: list[Problem] = []
        warnings: list[Problem] = []
        # The archive numbers as written: which households are stored already is read once,
        # before any is written (a row with a problem fails the import anyway).
        named = {households_table.cell(cells, "archive_no") for _n, cells in households_table.rows}
        existing = _existing(named, members_table)
        checked = _checked_households(
            households_table, crs=crs, problems=problems, warnings=warnings
        )
        location_source = LocationSource.GCJ02_MAP if crs == "gcj02" else LocationSource.IMPORTED
        created = None
        if connection.vendor == "postgresql" and not dry_run:
            fresh = len(named - existing.keys() - {""})  # new households, at the most
            households, created = _copy_new_households(
                checked, problems, existing, fresh, location_source
            )
        else:
            households = list(checked)
        members: list[_MemberRow] = []
        if members_table is not None:
            members = _check_members(members_table, household_archive_nos=named, problems=problems)
        if problems:
            raise ImportFailed(problems)  # what was COPY'd meanwhile is rolled back

        result = HouseholdImportResult(
            households=len(households), members=len(members), dry_run=dry_run, warnings=warnings
        )
        archive_nos = [row.archive_no for row in households]
        result.households_updated = sum(1 for a in archive_nos if a in existing)
        result.households_created = len(households) - result.households_updated
        if dry_run:
            pairs = _match_members(members, existing)
            result.members_updated = sum(1 for _row, match in pairs if match is not None)
            result.members_created = len(members) - result.members_updated
            return result

        ids = _write_households(
            households,
            households_table,
            location_source=location_source,
            existing=existing,
            created=created,
        )
        _write_houses(households, households_table, ids=ids, existing=existing, result=result)
        _write_members(members, members_table, ids=ids, result=result)
        pgcopy.analyze(
            {
                Household: len(households),
                House: result.houses_created + result.houses_updated,
                FamilyMember: result.members_created + result.members_updated,
            }
        )
        households_changed.send(sender=Household, ids=list(ids.values()))
    return result


def _existing(named: set[str], members_table: Table | None) -> dict[str, int]:
    """archive_no -> id of the stored households that the households file (`named`) or the
    members file names."""
    names = set(named)
    if members_table is not None:
        names |= {members_table.cell(cells, "archive_no") for _n, cells in members_table.rows}
    names.discard("")
    return dict(lookup(Household.objects.all(), "archive_no", names, "archive_no", "pk"))


def _copy_new_households(
    checked: Iterator[_HouseholdRow],
    problems: list[Problem],
    existing: dict[str, int],
    fresh: int,
    location_source: str,
) -> tuple[list[_HouseholdRow], dict[str, int]]:
    """Check the households while COPY writes the new ones (PostgreSQL): the database
    stores a row while Python checks the next (at 100,000 rows, each took a second of its
    own). Once a row has a problem nothing more is written: the import fails after the
    check, and its transaction takes back what was. `fresh`: how many new households the
    file has at the most. Returns the checked rows and archive_no -> id of the new
    households written."""
    rows: list[_HouseholdRow] = []
    created: list[str] = []

    def new_values():
        for row in checked:
            rows.append(row)
            if not problems and row.archive_no not in existing:
                created.append(row.archive_no)
                yield _household_values(row, location_source)

    if not fresh:
        rows.extend(checked)
        return rows, {}
    ids = pgcopy.insert_stream(Household, new_values(), fresh)
    return rows, dict(zip(created, ids, strict=True))


def _household_values(row: _HouseholdRow, location_source: str) -> dict:
    return {
        "archive_no": row.archive_no,
        "village_id": row.village_id,
        "head_name": row.head_name,
        "head_id_number": row.head_id_number,
        "phone": row.phone,
        "address": row.address,
        "location": row.location,
        "location_source": location_source if row.location else "",
        "key_group_id": row.key_group_id,
    }


def _write_households(
    rows: list[_HouseholdRow],
    table: Table,
    *,
    location_source: str,
    existing: dict[str, int],
    created: dict[str, int] | None = None,
) -> dict[str, int]:
    """Upsert on archive_no in bulk; return archive_no -> id for the file's households.
    `created`: the new households already COPY'd while the file was checked (archive_no
    -> id), so that only the stored ones are left to update."""
    update_fields = ["village", "head_name"]
    for column in ("head_id_number", "phone", "address", "key_group"):
        if table.has(column):
            update_fields.append(column)
    if table.has("longitude") and table.has("latitude"):
        update_fields += ["location", "location_source"]
    update_fields.append("updated_at")
    if created is None:
        values = [_household_values(row, location_source) for row in rows]
        written = pgcopy.upsert(
            Household,
            values,
            unique_field="archive_no",
            update_fields=update_fields,
            existing=existing,
        )
    else:
        stored = [
            _household_values(row, location_source) for row in rows if row.archive_no in existing
        ]
        pgcopy.update(
            Household, stored, update_fields=update_fields, ids=existing, key="archive_no"
        )
        written = {row["archive_no"]: existing[row["archive_no"]] for row in stored}
        written.update(created)
    _history(Household, written, existing=existing)
    ids = dict(existing)  # households named only by the members file are in here too
    ids.update(written)
    return ids


def _history(model, written: dict, *, existing: dict) -> None:
    """Record the upserted rows `written` (key -> id): changed if the key was `existing`."""
    created = [pk for key, pk in written.items() if key not in existing]
    changed = [pk for key, pk in written.items() if key in existing]
    history_snapshot(model, created, history_type=CREATED, reason=HISTORY_REASON)
    history_snapshot(model, changed, history_type=CHANGED, reason=HISTORY_REASON)


def _same(old, new) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        return old is not None and new is not None and Decimal(old) == Decimal(new)
    return old == new


def _write_houses(
    rows: list[_HouseholdRow],
    table: Table,
    *,
    ids: dict[str, int],
    existing: dict[str, int],
    result: HouseholdImportResult,
) -> None:
    fields = [HOUSE_COLUMNS[c] for c in HOUSE_COLUMNS if table.has(c)]
    # Only households that existed before this import can have a house already.
    current: dict[int, tuple] = {}
    before = sorted(existing[row.archive_no] for row in rows if row.archive_no in existing)
    for houses in matching(House.objects.filter(is_current=True), "household_id", before):
        for household_id, pk, *values in houses.values_list("household_id", "pk", *fields):
            current[household_id] = (pk, values)
    new, changed = [], []
    for row in rows:
        household_id = ids[row.archive_no]
        house = current.get(household_id)
        if house is None:
            new.append({"household_id": household_id, "is_current": True, **row.house})
            continue
        # Only rows that differ are written: re-importing the same file touches no house.
        pk, values = house
        if any(not _same(old, row.house[name]) for old, name in zip(values, fields, strict=True)):
            changed.append(House(pk=pk, **{name: row.house[name] for name in fields}))
    created = pgcopy.insert(House, new)
    if fields and changed:
        House.objects.bulk_update(changed, fields, batch_size=UPDATE_BATCH)
    history_snapshot(House, created, history_type=CREATED, reason=HISTORY_REASON)
    history_snapshot(
        House, [house.pk for house in changed], history_type=CHANGED, reason=HISTORY_REASON
    )
    result.houses_created = len(new)
    result.houses_updated = len(changed)


def _write_members(
    rows: list[_MemberRow],
    table: Table | None,
    *,
    ids: dict[str, int],
    result: HouseholdImportResult,
) -> None:
    if not rows:
        return
    new, changed = [], []
    fields = ["name", "relation", "id_number", "sex", "birth_date", "disability_level", "phone"]
    for row, member in _match_members(rows, ids):
        if member is None:
            new.append(
                {
                    "household_id": ids[row.archive_no],
                    "name": row.name,
                    "relation": row.relation or Relation.OTHER,
                    "id_number": row.id_number,
                    "sex": row.sex,
                    "birth_date": row.birth_date,
                    "disability_level": row.disability_level or "",
                    "phone": row.phone or "",
                }
            )
            continue
        result.members_updated += 1
        before = [getattr(member, name) for name in fields]
        member.name = row.name
        if row.relation:
            member.relation = row.relation
        if row.id_number:
            # A blank cell never erases a number already on record.
            member.id_number, member.sex, member.birth_date = (
                row.id_number,
                row.sex,
                row.birth_date,
            )
        if row.disability_level is not None:
            member.disability_level = row.disability_level
        if row.phone is not None:
            member.phone = row.phone
        if [getattr(member, name) for name in fields] != before:
            changed.append(member)
    created = pgcopy.insert(FamilyMember, new)
    FamilyMember.objects.bulk_update(changed, fields, batch_size=UPDATE_BATCH)
    history_snapshot(FamilyMember, created, history_type=CREATED, reason=HISTORY_REASON)
    history_snapshot(
        FamilyMember, [m.pk for m in changed], history_type=CHANGED, reason=HISTORY_REASON
    )
    result.members_created = len(new)
