"""Subsidy money by region (renovation.money) on the dashboard, its CSV and the region page.

The cases are driven through the real services (tests.renovation.factories.case_in_state,
without photos) and paid through the real payment service, so the amounts, the payments
and the states are the ones production would hold.

County 520399:
  township 1, village 1: a C house approved by the county (repair, 6,000 allocated); a D
    house whose completion passed long ago, 5,000 of 20,000 paid (overdue: 15,000); a D
    house applied for only (nothing allocated).
  township 2, village 2: a D house paid in full (20,000); a D house withdrawn (nothing); a
    D house whose completion passed yesterday, unpaid (20,000 allocated, not yet due).
County 520398 (another county): a D house paid in full, 20,000: never in 520399's figures.
"""

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Role
from accounts.scoping import user_region_codes
from renovation.models import CaseState, RenovationCase
from renovation.money import Money, money_by_code, region_money, yuan
from tests.factories import HouseholdFactory, make_region, square
from tests.renovation.factories import case_in_state, eligible_house, pay

pytestmark = pytest.mark.django_db

COUNTY, OTHER_COUNTY = "520399", "520398"
T1, T2 = "520399100", "520399101"
V1, V2 = "520399100200", "520399101200"


def case_in(village, state, *, grade="D"):
    house = eligible_house(household=HouseholdFactory(village=village))
    return case_in_state(state, house=house, grade=grade, photos=False)


def completion_passed_days_ago(case: RenovationCase, days: int) -> None:
    """Move the completion check back in time (tests cannot wait for the payment period)."""
    passed = timezone.now() - datetime.timedelta(days=days)
    RenovationCase.objects.filter(pk=case.pk).update(completion_passed_at=passed)


@pytest.fixture(scope="class")
def built(class_rows):
    """The cases of the module docstring, built once for a class (each takes seconds)."""
    with (
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        translation.override("en"),
    ):
        # The conftest's regions (tests.conftest.regions), made here first: it finds them.
        make_region(COUNTY, "安居示范县", boundary=square(107.9, 27.2, 0.2))
        make_region(T1, "龙溪镇", boundary=square(107.9, 27.2, 0.1))
        make_region(T2, "白泥镇", boundary=square(108.0, 27.2, 0.1))
        v1 = make_region(V1, "青山村", boundary=square(107.9, 27.2, 0.05))
        v2 = make_region(V2, "河坝村", boundary=square(108.0, 27.2, 0.05))
        late = settings.ANJU_PAYMENT_DUE_DAYS + 5

        approved = case_in(v1, CaseState.COUNTY_APPROVED, grade="C")
        overdue = case_in(v1, CaseState.COMPLETION_PASSED)
        completion_passed_days_ago(overdue, late)
        pay(
            user=overdue.team["county"],
            case_id=overdue.pk,
            amount=Decimal("5000"),
            paid_on=timezone.localdate(),
            reference="PART-1",
        )
        applied = case_in(v1, CaseState.APPLIED)

        paid = case_in(v2, CaseState.PAID)
        withdrawn = case_in(v2, CaseState.WITHDRAWN)
        recent = case_in(v2, CaseState.COMPLETION_PASSED)
        completion_passed_days_ago(recent, 1)

        other_village = make_region(f"{OTHER_COUNTY}100200", "外县村", boundary=square(108.5, 27.5))
        other = case_in(other_village, CaseState.PAID)
    return {
        "approved": approved,
        "overdue": overdue,
        "applied": applied,
        "paid": paid,
        "withdrawn": withdrawn,
        "recent": recent,
        "other": other,
    }


@pytest.fixture
def money(built, regions):
    return built


T1_MONEY = Money(allocated=Decimal("26000.00"), paid=Decimal("5000.00"), overdue=Decimal("15000"))
T2_MONEY = Money(allocated=Decimal("40000.00"), paid=Decimal("20000.00"), overdue=Decimal("0"))
COUNTY_MONEY = Money(
    allocated=Decimal("66000.00"), paid=Decimal("25000.00"), overdue=Decimal("15000.00")
)


def money_table(html: str) -> dict[str, list[str]]:
    """The money table as {row header text: [allocated, paid, overdue]}."""
    body = re.search(r'<table class="counts money-table">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        head = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        if head is None:
            continue
        name = re.sub(r"<[^>]+>", "", head.group(1)).strip()
        rows[name] = re.findall(r'<td class="num">(.*?)</td>', row)
    return rows


T1_CELLS = ["¥26,000.00", "¥5,000.00", "¥15,000.00"]
T2_CELLS = ["¥40,000.00", "¥20,000.00", "¥0.00"]
TOTAL_CELLS = ["¥66,000.00", "¥25,000.00", "¥15,000.00"]


class TestMoney:
    """One built county for every test (see built)."""

    def test_the_cases_are_what_the_figures_say(self, money):
        """The built data: states, subsidies and payments as the module docstring has them."""
        states = {k: RenovationCase.objects.get(pk=c.pk).state for k, c in money.items()}
        assert states == {
            "approved": CaseState.COUNTY_APPROVED,
            "overdue": CaseState.COMPLETION_PASSED,
            "applied": CaseState.APPLIED,
            "paid": CaseState.PAID,
            "withdrawn": CaseState.WITHDRAWN,
            "recent": CaseState.COMPLETION_PASSED,
            "other": CaseState.PAID,
        }
        assert money["approved"].subsidy_amount == Decimal("6000.00")
        assert money["overdue"].subsidy_amount == Decimal("20000.00")

    def test_money_per_township_and_in_total_is_exact(self, money, county_official, regions):
        total, children = region_money(
            user=county_official,
            region=regions["county"],
            children=[regions["township1"], regions["township2"]],
        )
        assert children == [T1_MONEY, T2_MONEY]
        assert total == COUNTY_MONEY

    def test_money_by_village_code_in_one_query(
        self, money, county_official, regions, django_assert_num_queries
    ):
        user_region_codes(county_official)  # read once per request, then cached on the user
        with django_assert_num_queries(1):
            by_code = money_by_code(user=county_official, region_code=COUNTY, code_length=12)
        assert by_code == {V1: T1_MONEY, V2: T2_MONEY}

    def test_overdue_follows_the_payment_period(self, money, county_official, regions):
        """Yesterday's completion becomes overdue once its payment period is over."""
        later = timezone.localdate() + datetime.timedelta(days=settings.ANJU_PAYMENT_DUE_DAYS + 1)
        total, _children = region_money(
            user=county_official, region=regions["county"], children=[], today=later
        )
        assert total.overdue == Decimal("35000.00")  # 15,000 + the recent case's 20,000

    def test_another_countys_cases_are_never_counted(
        self, money, administrator, county_official, regions
    ):
        # The administrator sees everything: the county's figures still hold only its cases.
        total, _children = region_money(user=administrator, region=regions["county"], children=[])
        assert total == COUNTY_MONEY
        province = make_region("52")
        total, _children = region_money(user=administrator, region=province, children=[])
        assert total == COUNTY_MONEY + Money(
            allocated=Decimal("20000.00"), paid=Decimal("20000.00"), overdue=Decimal("0")
        )
        # The county official asking about the province sees only their county.
        total, _children = region_money(user=county_official, region=province, children=[])
        assert total == COUNTY_MONEY

    def test_a_township_official_counts_only_their_township(
        self, money, township_official, regions
    ):
        total, children = region_money(
            user=township_official,
            region=regions["county"],
            children=[regions["township1"], regions["township2"]],
        )
        assert total == T1_MONEY
        assert children == [T1_MONEY, Money()]

    def test_amounts_are_written_with_the_yuan_sign_and_grouped_in_every_language(self):
        assert yuan(Decimal("1234567.5")) == "¥1,234,567.50"
        assert yuan(Decimal("0")) == "¥0.00"
        with translation.override("zh-hans"):
            assert yuan(Decimal("66000")) == "¥66,000.00"

    def test_the_dashboard_shows_money_per_township_and_in_total(
        self, client, county_official, money
    ):
        client.force_login(county_official)
        html = client.get(reverse("maps:dashboard", args=[COUNTY])).content.decode()
        assert money_table(html) == {"龙溪镇": T1_CELLS, "白泥镇": T2_CELLS, "Total": TOTAL_CELLS}
        # Each township's row leads to its own dashboard.
        assert f'<a href="/maps/{T1}/progress/">龙溪镇</a>' in html

    def test_the_dashboard_money_follows_the_filters(self, client, county_official, money):
        client.force_login(county_official)
        url = reverse("maps:dashboard", args=[COUNTY]) + "?state=completion_passed"
        html = client.get(url).content.decode()
        assert money_table(html)["Total"] == ["¥40,000.00", "¥5,000.00", "¥15,000.00"]

    def test_the_dashboard_money_of_a_village_is_its_own_row(self, client, county_official, money):
        client.force_login(county_official)
        html = client.get(reverse("maps:dashboard", args=[V1])).content.decode()
        assert money_table(html) == {"青山村": T1_CELLS}

    def test_the_dashboard_of_a_township_official_counts_their_township_only(
        self, client, township_official, money
    ):
        client.force_login(township_official)
        assert client.get(reverse("maps:dashboard", args=[COUNTY])).status_code == 404
        html = client.get(reverse("maps:dashboard", args=[T1])).content.decode()
        assert money_table(html) == {"青山村": T1_CELLS, "Total": T1_CELLS}

    def test_the_dashboard_money_in_chinese(self, client, county_official, money):
        client.force_login(county_official)
        html = client.get(
            reverse("maps:dashboard", args=[COUNTY]), HTTP_ACCEPT_LANGUAGE="zh-hans"
        ).content.decode()
        assert '<html lang="zh-hans">' in html
        assert money_table(html)["龙溪镇"] == T1_CELLS

    def test_the_dashboard_csv_has_the_money_in_yuan(self, client, county_official, money):
        client.force_login(county_official)
        response = client.get(reverse("maps:dashboard", args=[COUNTY]) + "?format=csv")
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][-3:] == [
            "Subsidy allocated (yuan)",
            "Subsidy paid (yuan)",
            "Overdue unpaid (yuan)",
        ]
        assert {row[0]: row[-3:] for row in rows[1:]} == {
            T1: ["26000.00", "5000.00", "15000.00"],
            T2: ["40000.00", "20000.00", "0.00"],
            COUNTY: ["66000.00", "25000.00", "15000.00"],
        }

    def test_the_region_page_shows_money_per_child_and_in_total(
        self, client, county_official, money
    ):
        client.force_login(county_official)
        html = client.get(reverse("portal:region_detail", args=[COUNTY])).content.decode()
        assert money_table(html) == {"龙溪镇": T1_CELLS, "白泥镇": T2_CELLS, "Total": TOTAL_CELLS}
        assert f'<a href="{reverse("portal:region_detail", args=[T1])}">龙溪镇</a>' in html
        village = client.get(reverse("portal:region_detail", args=[V2])).content.decode()
        assert money_table(village) == {"河坝村": T2_CELLS}

    def test_the_region_page_money_is_scoped(self, client, make_user, money, regions):
        client.force_login(make_user(Role.TOWNSHIP_OFFICIAL, [regions["township2"]]))
        assert client.get(reverse("portal:region_detail", args=[COUNTY])).status_code == 404
        html = client.get(reverse("portal:region_detail", args=[T2])).content.decode()
        assert money_table(html) == {"河坝村": T2_CELLS, "Total": T2_CELLS}
        assert "¥26,000.00" not in html and "¥66,000.00" not in html
