"""Can anyone rebuild a person's ID number from what their role is shown? Tried as an attacker
would: sign in as each role of the demo county, read every channel that role has (the
household list and files, the worklist, the API, the ledgers, the household file PDF), put
together all that is shown about each person, and count the ID numbers that fit it.

What the attacker knows besides: the area code (the county's public statistical code, the
first 6 digits of its villages' codes), and how a number is made (housing.idnumbers): the
birth date, a 3-digit sequence whose parity is the sex, and the ISO 7064 check character.
The count is exact: every valid birth date allowed by what was shown, times every sequence
allowed by the sex and any shown digits, whose check character matches the one shown.

A control makes sure the attacker is not blind: an administrator, who is shown the numbers,
rebuilds every one of them to a single candidate through the same reading, and the old mask
(first 6 and last 4, with the full birth date or the birth year) is rebuilt or narrowed to
a handful by the same counting.
"""

import csv
import datetime
import html
import io
import re
from dataclasses import dataclass, field

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone, translation
from pypdf import PdfReader

from accounts.models import User
from accounts.scoping import scope
from audit.permissions import can_view_worklist
from housing import idnumbers
from housing.models import FamilyMember, Household, Relation
from reports.permissions import can_make_export
from reports.runner import export_run
from reports.services import export_request
from tests.factories import FamilyMemberFactory, HouseholdFactory

pytestmark = pytest.mark.django_db

ROLES = ["inspector", "township", "county", "auditor"]
DEMO_HOUSEHOLDS = 30
DEMO_PHOTOGRAPHED = 3  # with photos the demo also makes cases, and their planted duplicates
PDF_HOUSEHOLDS = 2  # WeasyPrint costs about a second a file: the first ones in scope
ID_TOKEN = re.compile(r"(?<![0-9A-Za-z*])[0-9*]{17}[0-9Xx*](?![0-9A-Za-z*])")
DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
YEAR = re.compile(r"^\s*(\d{4})\b")
SEXES = {"Male": "M", "Female": "F", "M": "M", "F": "F"}
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"


# --- what the attacker knows of one person, and the numbers that fit it ---------------------


@dataclass
class Knowledge:
    """Everything shown about one person (one household, one name, compatible numbers)."""

    area_hint: str  # the county's code: the area code of most of its residents
    chars: list = field(default_factory=lambda: [None] * 18)
    dates: set = field(default_factory=set)
    years: set = field(default_factory=set)
    sexes: set = field(default_factory=set)
    seen_in: set = field(default_factory=set)

    def compatible(self, shown: str) -> bool:
        return all(c == "*" or k is None or c == k for c, k in zip(shown, self.chars, strict=True))

    def add_number(self, shown: str) -> None:
        for i, c in enumerate(shown.upper()):
            if c != "*":
                self.chars[i] = c

    def add_birth(self, text: str) -> None:
        date = DATE.search(text or "")
        if date:
            self.dates.add(datetime.date(*map(int, date.groups())))
            return
        year = YEAR.match(str(text or ""))
        if year:
            self.years.add(int(year.group(1)))

    def fits(self, number: str) -> bool:
        """Is this (true) number one the attacker's candidates include?"""
        info = idnumbers.parse(number)
        return (
            all(k is None or k == c for k, c in zip(self.chars, number, strict=True))
            and all(d == info.birth_date for d in self.dates)
            and all(y == info.birth_date.year for y in self.years)
            and all(s == info.sex for s in self.sexes)
        )

    def candidates(self, today: datetime.date) -> int:
        """How many valid ID numbers agree with everything shown."""
        area = "".join(c or "?" for c in self.chars[:6])
        if "?" in area:
            area = self.area_hint
        if len(self.dates) == 1:
            dates = list(self.dates)
        else:
            years = self.years or set(range(1880, today.year + 1))
            dates = [d for y in years for d in _days_of(y, today)]
        dates = [
            d
            for d in dates
            if all(
                k is None or k == c for k, c in zip(self.chars[6:14], f"{d:%Y%m%d}", strict=True)
            )
        ]
        # The sequences allowed by the sex and any shown digit, by their weighted sum mod 11.
        by_residue = [0] * 11
        for seq in range(1000):
            digits = f"{seq:03d}"
            if any(
                k is not None and k != c for k, c in zip(self.chars[14:17], digits, strict=True)
            ):
                continue
            sex = idnumbers.SEX_MALE if seq % 2 else idnumbers.SEX_FEMALE
            if self.sexes and sex not in self.sexes:
                continue
            by_residue[
                sum(int(c) * w for c, w in zip(digits, _WEIGHTS[14:], strict=True)) % 11
            ] += 1
        check = self.chars[17]
        total = 0
        for d in dates:
            head = f"{area}{d:%Y%m%d}"
            partial = sum(int(c) * w for c, w in zip(head, _WEIGHTS[:14], strict=True))
            for residue, n in enumerate(by_residue):
                if n and (check is None or _CHECK[(partial + residue) % 11] == check):
                    total += n
        return total


def _days_of(year: int, today: datetime.date) -> list[datetime.date]:
    first = datetime.date(year, 1, 1)
    last = min(datetime.date(year, 12, 31), today)
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


class Dossier:
    """What one role has read, by (archive number, name): a list of Knowledge, one for each
    set of compatible numbers shown under that name (two people may share a name)."""

    def __init__(self, area_of: dict[str, str]):
        self.area_of = area_of  # archive number -> the county code
        self.people: dict[tuple[str, str], list[Knowledge]] = {}
        self.tokens: set[str] = set()  # every ID-like string read anywhere

    def add(self, channel, archive_no, name, shown, *, birth="", sex=""):
        archive_no, name, shown = archive_no.strip(), name.strip(), (shown or "").strip().upper()
        if not shown:
            return
        known = self.people.setdefault((archive_no, name), [])
        person = next((k for k in known if k.compatible(shown)), None)
        if person is None:
            person = Knowledge(area_hint=self.area_of.get(archive_no, ""))
            known.append(person)
        person.add_number(shown)
        person.add_birth(str(birth or ""))
        if sex in SEXES:
            person.sexes.add(SEXES[sex])
        person.seen_in.add(channel)

    def read_tokens(self, text: str) -> None:
        self.tokens.update(t.upper() for t in ID_TOKEN.findall(text))


# --- reading each channel ------------------------------------------------------------------


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _rows(page: str) -> list[dict[str, str]]:
    """The table rows of a page as {column label: text} (every table cell has data-label)."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = re.findall(r'<td data-label="([^"]*)"[^>]*>(.*?)</td>', row, re.S)
        if cells:
            rows.append({html.unescape(label): _text(value) for label, value in cells})
    return rows


def read_html(client: Client, dossier: Dossier, household_pks: list[int]) -> None:
    page_no = 1
    while True:
        response = client.get("/households/", {"page": page_no})
        page = response.content.decode()
        dossier.read_tokens(page)
        for row in _rows(page):
            dossier.add("list", row["Archive number"], row["Head of household"], row["ID number"])
        if f"page={page_no + 1}" not in page:
            break
        page_no += 1
    for pk in household_pks:
        page = client.get(f"/households/{pk}/").content.decode()
        dossier.read_tokens(page)
        archive_no = _text(re.search(r'<h1>.*?<small class="muted">(.*?)</small>', page).group(1))
        fields = {
            _text(k): _text(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", page)
        }
        dossier.add("file", archive_no, fields["Head of household"], fields.get("ID number"))
        for row in _rows(page):
            if "Relation" not in row:
                continue
            birth = next((v for k, v in row.items() if k.startswith("Birth")), "")
            dossier.add(
                "file", archive_no, row["Name"], row["ID number"], birth=birth, sex=row["Sex"]
            )


def read_worklist(client: Client, dossier: Dossier) -> None:
    page_no = 1
    while True:
        response = client.get("/audit/worklist/", {"page": page_no})
        if response.status_code != 200:
            return
        page = response.content.decode()
        dossier.read_tokens(page)
        for row in _rows(page):
            read_reason(dossier, "worklist", row["Household"].split()[0], row["Reason"])
        if f"page={page_no + 1}" not in page:
            return
        page_no += 1


def read_reason(dossier: Dossier, channel: str, archive_no: str, reason: str) -> None:
    """The worklist's reasons name people with their numbers, in two sentences."""
    for name, shown in re.findall(r"(\S+) \(ID number ([0-9X*]{18})\)", reason):
        dossier.add(channel, archive_no, name, shown)
    recorded = re.search(r"ID number ([0-9X*]{18}) is recorded \d+ times?: (.*)", reason)
    if recorded:
        for name, other in re.findall(r"(\S+) \(household ([^)]+)\)", recorded.group(2)):
            dossier.add(channel, other, name, recorded.group(1))


def read_api(client: Client, dossier: Dossier) -> dict[int, str]:
    archive_of = {}
    url = "/api/households/?page_size=100"
    while url:
        body = client.get(url).json()
        dossier.read_tokens(str(body))
        for feature in body["features"]:
            p = feature["properties"]
            archive_of[feature["id"]] = p["archive_no"]
            dossier.add("api", p["archive_no"], p["head_name"], p["head_id_number"])
        url = body["next"]
    for pk, archive_no in archive_of.items():
        body = client.get(f"/api/households/{pk}/").json()
        members = client.get(f"/api/households/{pk}/members/").json()
        dossier.read_tokens(str(body) + str(members))
        for m in body["properties"]["members"] + members:
            birth = m["birth_date"] or (str(m["birth_year"]) if m["birth_year"] else "")
            dossier.add("api", archive_no, m["name"], m["id_number"], birth=birth, sex=m["sex"])
    url = "/api/members/?page_size=100"
    while url:
        body = client.get(url).json()
        dossier.read_tokens(str(body))
        for m in body["results"]:
            birth = m["birth_date"] or (str(m["birth_year"]) if m["birth_year"] else "")
            dossier.add(
                "api",
                archive_of[m["household"]],
                m["name"],
                m["id_number"],
                birth=birth,
                sex=m["sex"],
            )
        url = body["next"]
    return archive_of


def _export(user, kind: str, fmt: str, **params) -> bytes | None:
    if not can_make_export(user, kind):
        return None
    with translation.override("en"):
        export = export_request(
            user=user, kind=kind, format=fmt, params=params, base_url="http://testserver"
        )
    export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.error == "", export.error
    with default_storage.open(export.file, "rb") as handle:
        return handle.read()


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def read_exports(user, dossier: Dossier, pdf_households: list[Household]) -> None:
    data = _export(user, "households", "csv", filters={})
    if data is not None:
        dossier.read_tokens(data.decode("utf-8-sig"))
        for row in _csv(data):
            dossier.add(
                "ledger", row["Archive number"], row["Head of household"], row["Head's ID number"]
            )
    data = _export(user, "members", "csv")
    if data is not None:
        dossier.read_tokens(data.decode("utf-8-sig"))
        for row in _csv(data):
            birth = row.get("Birth date") or row.get("Birth year")
            dossier.add(
                "ledger",
                row["Archive number"],
                row["Name"],
                row["ID number"],
                birth=birth,
                sex=row["Sex"],
            )
    data = _export(user, "worklist", "csv", filters={})
    if data is not None:
        text = data.decode("utf-8-sig")
        dossier.read_tokens(text)
        for row in _csv(text.encode()):
            read_reason(dossier, "ledger", row["Archive number"], row["Reason"])
    for household in pdf_households:
        data = _export(user, "household_file", "pdf", household=household.pk)
        if data is None:
            continue
        text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)
        dossier.read_tokens(text)
        names = {household.head_name, *household.members.values_list("name", flat=True)}
        for line in text.splitlines():
            token = ID_TOKEN.search(line)
            if not token:
                continue
            # A member row: name, relation, number, sex, birth; the head's: "ID number ...".
            name = next((n for n in names if line.startswith(n)), None)
            after = line[token.end() :].split()
            if name is not None and after and after[0] in SEXES:
                birth = after[1] if len(after) > 1 else ""
                dossier.add(
                    "pdf", household.archive_no, name, token.group(), birth=birth, sex=after[0]
                )
            elif "ID number" in line:
                dossier.add("pdf", household.archive_no, household.head_name, token.group())


# --- the demo county, and a household of awkward birthdays ------------------------------------


@pytest.fixture(scope="class")
def county(class_rows):
    with (
        override_settings(
            ANJU_DEMO_PASSWORD="demo-pass-1-for-tests",
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        translation.override("en"),
    ):
        call_command(
            "seed_demo",
            households=DEMO_HOUSEHOLDS,
            photos=DEMO_PHOTOGRAPHED,
            seed=5,
            stdout=io.StringIO(),
        )
    # The fewest days to hide among: born this year (on New Year's Day, and today); and born
    # on a 29 February, on a 31 December, and long ago. 边二 is recorded again in
    # another household, so the worklist names them with their masked number.
    village = Household.objects.order_by("archive_no").first().village
    today = timezone.localdate()
    awkward = [
        ("边一", datetime.date(today.year, 1, 1), 1),
        ("边二", datetime.date(2000, 2, 29), 2),
        ("边三", datetime.date(1999, 12, 31), 3),
        ("边四", datetime.date(1911, 10, 10), 4),
        ("边五", today, 5),
    ]
    household = HouseholdFactory(
        village=village,
        archive_no="520399999999-0001",
        head_name="边一",
        head_id_number=idnumbers.make(village.code[:6], awkward[0][1], 1),
    )
    for name, born, seq in awkward:
        FamilyMemberFactory(
            household=household,
            name=name,
            relation=Relation.HEAD if name == "边一" else Relation.CHILD,
            id_number=idnumbers.make(village.code[:6], born, seq),
        )
    # The same person recorded again in another household: the worklist names them both.
    again = HouseholdFactory(village=village, archive_no="520399999999-0002", head_name="边六")
    FamilyMemberFactory(
        household=again,
        name="边二",
        relation=Relation.SPOUSE,
        id_number=household.members.get(name="边二").id_number,
    )
    return {name: User.objects.get(username=name) for name in [*ROLES, "admin"]}


def truth(user) -> dict[tuple[str, str], set[str]]:
    """(archive number, name) -> the ID numbers behind it, in the user's regions."""
    people: dict[tuple[str, str], set[str]] = {}
    for archive_no, name, number in scope(
        FamilyMember.objects.exclude(id_number=""), user, "household__village__code"
    ).values_list("household__archive_no", "name", "id_number"):
        people.setdefault((archive_no, name), set()).add(number)
    for archive_no, name, number in scope(
        Household.objects.exclude(head_id_number=""), user, "village__code"
    ).values_list("archive_no", "head_name", "head_id_number"):
        people.setdefault((archive_no, name), set()).add(number)
    return people


def read_everything(user) -> Dossier:
    households = list(
        scope(Household.objects.select_related("village"), user, "village__code").order_by(
            "archive_no"
        )
    )
    dossier = Dossier({h.archive_no: h.village.code[:6] for h in households})
    client = Client()
    client.force_login(user)
    read_html(client, dossier, [h.pk for h in households])
    if can_view_worklist(user):
        read_worklist(client, dossier)
    read_api(client, dossier)
    pdf = [h for h in households if h.members.exists()][: PDF_HOUSEHOLDS - 1]
    pdf.append(Household.objects.get(archive_no="520399999999-0001"))
    read_exports(user, dossier, [h for h in pdf if h in households])
    return dossier


def expected_channels(user) -> set[str]:
    channels = {"list", "file", "api"}
    if can_make_export(user, "members"):
        channels |= {"ledger", "pdf"}
    return channels


@pytest.mark.usefixtures("county")
class TestNoRoleCanRebuildAnIdNumber:
    @pytest.mark.parametrize("role", ROLES)
    def test_every_person_shown_to_the_role_keeps_many_candidate_numbers(self, county, role):
        user = county[role]
        today = timezone.localdate()
        dossier = read_everything(user)
        real = truth(user)

        assert real, "the role sees people"
        # Every person in the role's regions was read, with their number shown masked.
        assert set(real) <= set(dossier.people)
        fewest = None
        for key, known in dossier.people.items():
            for person in known:
                numbers = [n for n in real.get(key, ()) if person.fits(n)]
                assert numbers, f"{key}: what was read must fit the real number"
                count = person.candidates(today)
                assert count > 1, f"{role} rebuilds {key}: {numbers} from {person}"
                fewest = count if fewest is None else min(fewest, count)
        # Birth dates are never shown beside a masked number, only the year.
        assert not any(p.dates for known in dossier.people.values() for p in known)
        # And no channel shows any birth-date or sequence digit of any number.
        assert dossier.tokens
        for token in dossier.tokens:
            assert token[6:17] == "*" * 11, f"{role} was shown {token}"
        channels = set().union(*(p.seen_in for known in dossier.people.values() for p in known))
        assert channels >= expected_channels(user), "every channel of the role was read"
        print(f"{role}: {len(dossier.people)} people via {sorted(channels)}; fewest: {fewest}")

    @pytest.mark.parametrize("role", ROLES)
    def test_searching_by_a_whole_number_confirms_nothing(self, county, role):
        user = county[role]
        client = Client()
        client.force_login(user)
        number = next(iter(next(iter(truth(user).values()))))
        page = client.get("/households/", {"q": number})
        assert page.context["page"] is None
        assert page.context["form"].errors["q"] == [str(idnumbers.ID_SEARCH_REFUSED)]
        api = client.get("/api/households/", {"q": number})
        assert api.status_code == 400
        assert api.json() == {"q": [str(idnumbers.ID_SEARCH_REFUSED)]}

    def test_the_same_reading_rebuilds_every_number_for_an_administrator(self, county):
        """The control: the attacker is not blind. The administrator is shown the numbers
        and the birth dates, and the same reading and counting finds each one exactly."""
        user = county["admin"]
        dossier = read_everything(user)
        real = truth(user)
        assert set(real) <= set(dossier.people)
        for key, known in dossier.people.items():
            for person in known:
                assert person.candidates(timezone.localdate()) == 1, key
                assert "".join(person.chars) in real[key]
        assert any(p.dates for known in dossier.people.values() for p in known)
        channels = set().union(*(p.seen_in for known in dossier.people.values() for p in known))
        assert channels >= expected_channels(user) | {"worklist"}
        # The PDF's rows are read too: there, as everywhere, the birth dates come whole.
        assert any(
            "pdf" in p.seen_in and p.dates for known in dossier.people.values() for p in known
        )


# --- the counting itself, on the old mask and the new ----------------------------------------


TODAY = datetime.date(2025, 6, 30)
NUMBER = idnumbers.make("520399", datetime.date(1958, 3, 14), 123)  # male


def old_mask(number: str) -> str:
    return number[:6] + "*" * 8 + number[-4:]


def known(shown: str, *, birth: str = "", sex: str = "M") -> Knowledge:
    person = Knowledge(area_hint="520399")
    person.add_number(shown)
    person.add_birth(birth)
    person.sexes.add(sex)
    return person


def test_the_old_mask_with_the_birth_date_shown_gave_the_number_back():
    person = known(old_mask(NUMBER), birth="1958-03-14")
    assert person.candidates(TODAY) == 1
    assert person.fits(NUMBER)


def test_the_old_mask_with_the_birth_year_left_a_handful():
    # 365 days of 1958, one in 11 with the right check character.
    assert 20 <= known(old_mask(NUMBER), birth="1958").candidates(TODAY) <= 45


def test_the_new_mask_with_the_birth_year_leaves_thousands():
    person = known(idnumbers.mask(NUMBER), birth="1958")
    assert person.fits(NUMBER)
    # 365 days x 500 odd sequences / 11 check values.
    assert 15_000 <= person.candidates(TODAY) <= 18_500


def test_the_new_mask_would_still_leave_dozens_even_with_the_full_birth_date():
    # Not shown anywhere; the margin if it were: 500 sequences / 11.
    assert 35 <= known(idnumbers.mask(NUMBER), birth="1958-03-14").candidates(TODAY) <= 60


def test_someone_born_on_new_years_day_of_this_year_is_not_alone():
    number = idnumbers.make("520399", datetime.date(2025, 1, 1), 2)
    person = known(idnumbers.mask(number), birth="2025", sex="F")
    assert person.fits(number)
    # Only the days up to today are possible: 181 x 500 / 11.
    assert person.candidates(TODAY) > 7_000
    assert (
        known(idnumbers.mask(number), birth="2025", sex="F").candidates(datetime.date(2025, 1, 1))
        > 30
    )
