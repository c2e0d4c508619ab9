"""The progress dashboard: figures for a hand-built county, per-child rows, filters, scope,
the server-drawn SVG charts, the CSV download, bad input and the query count.

The data go in through the models' save(), so the MapPoint rows the dashboard counts are
the ones maps.signals keeps in step in production.
"""

import csv
import datetime
import html as html_lib
import io
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from housing.models import SafetyGrade
from maps import charts
from maps.legend import GRADES, STAGES
from renovation.models import CaseState, Payment, RenovationCase
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import HouseFactory, HouseholdFactory, key_group, make_region
from tests.renovation.factories import CaseFactory

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
COUNTY = "520399"
T1, T2, T3 = "520399100", "520399101", "520399102"
V1, V1B, V2 = "520399100200", "520399100201", "520399101200"
HEADER = [
    "Region code",
    "Region",
    "Households",
    *(str(c.label) for c in GRADES),
    *(str(c.label) for c in STAGES),
    "Completion (%)",
    "Overdue payments",
    "Subsidy allocated (yuan)",
    "Subsidy paid (yuan)",
    "Overdue unpaid (yuan)",
]


def add_household(village, grade=None, state=None, *, group="minimum_income", **case):
    """A household in `village`; with a current house of `grade` ("" = not appraised, None =
    no house at all); with a case in `state` on that house when given."""
    household = HouseholdFactory(village=village, key_group=key_group(group))
    if grade is not None:
        house = HouseFactory(household=household, safety_grade=grade)
        if state:
            CaseFactory(house=house, state=state, **case)
    return household


def record_payment(household, amount: str) -> None:
    """A payment row of the household's case, as case_pay records it beside paid_total."""
    case = RenovationCase.objects.get(house__household=household)
    Payment.objects.create(
        case=case,
        amount=Decimal(amount),
        paid_on=timezone.localdate(),
        reference=f"PAY-{case.pk}",
        recorded_by=case.created_by,
    )


def passed(days_ago: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days_ago)


@pytest.fixture
def county(regions):
    """Township 1 (villages V1, V1B): 6 households; township 2 (V2): 5; township 3: none.

    T1: A, B, C (applied), D (works started), D (passed long ago, unpaid: overdue) in V1,
        one never appraised (a house, no grade) in V1B.
    T2: D (paid), C (rejected), C (passed yesterday: not yet due), D (passed long ago,
        part paid: overdue), one household with no house; all "registered poor", the
        part-paid case funded in 2025.
    Every case's subsidy is 20,000 (CaseFactory): allocated (approved cases) T1 40,000 and
    T2 60,000; paid T2 25,000; overdue unpaid T1 20,000, T2 15,000.
    """
    late = settings.ANJU_PAYMENT_DUE_DAYS + 5
    v1, v2 = regions["village1"], regions["village2"]
    v1b = make_region(V1B, "石门村")
    make_region(T3, '<b>"Tom & Jerry"</b>\'s town')
    add_household(v1, SafetyGrade.A)
    add_household(v1, SafetyGrade.B)
    add_household(v1, SafetyGrade.C, CaseState.APPLIED)
    add_household(v1, SafetyGrade.D, CaseState.WORKS_STARTED)
    add_household(v1, SafetyGrade.D, CaseState.COMPLETION_PASSED, completion_passed_at=passed(late))
    add_household(v1b, SafetyGrade.NOT_APPRAISED)
    poor = "registered_poor"
    paid = add_household(
        v2,
        SafetyGrade.D,
        CaseState.PAID,
        group=poor,
        completion_passed_at=passed(late),
        paid_total=Decimal("20000.00"),
    )
    record_payment(paid, "20000.00")
    add_household(v2, SafetyGrade.C, CaseState.REJECTED, group=poor)
    add_household(
        v2, SafetyGrade.C, CaseState.COMPLETION_PASSED, group=poor, completion_passed_at=passed(1)
    )
    part_paid = add_household(
        v2,
        SafetyGrade.D,
        CaseState.COMPLETION_PASSED,
        group=poor,
        completion_passed_at=passed(late),
        paid_total=Decimal("5000.00"),
        funding_year=2025,
    )
    record_payment(part_paid, "5000.00")
    add_household(v2, None, group=poor)
    return regions


def cells(text: str) -> list[str]:
    """A CSV row's cells written as one line: "6 1 1" -> ["6", "1", "1"]."""
    return text.split(" ")


def dashboard(code: str, **params) -> str:
    url = reverse("maps:dashboard", args=[code])
    if params:
        url += "?" + urlencode(params, doseq=True)
    return url


def table(html: str) -> dict[str, list[str]]:
    """The progress table as {row header text: [cell texts]}, the totals row as "Total"."""
    body = re.search(r'<table class="counts progress-table">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        head = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        if head is None:
            continue
        name = html_lib.unescape(re.sub(r"<[^>]+>", "", head.group(1)).strip())
        rows[name] = re.findall(r'<td class="num">(.*?)</td>', row)
    return rows


def cards(html: str) -> dict[str, str]:
    found = re.findall(
        r'data-key="(\w+)">\s*<dt>.*?</dt>\s*<dd><span class="summary-card__value">(.*?)</span>',
        html,
        re.S,
    )
    return dict(found)


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg class=\"chart\".*?</svg>", html, re.S)]


def chart_rows(svg: ET.Element) -> dict[str, list[tuple[str, str]]]:
    """{row label: [(segment key, hover text)]} of one chart."""
    rows = {}
    for group in svg.iter(f"{SVG}g"):
        label = group.find(f"{SVG}text").text
        rows[label] = [
            (rect.get("data-key"), rect.find(f"{SVG}title").text)
            for rect in group.iter(f"{SVG}rect")
        ]
    return rows


# Columns: households, A, B, C, D, not appraised, no case, approval, works, completed,
# closed, completion, overdue.
T1_ROW = ["6", "1", "1", "1", "2", "1", "3", "1", "1", "1", "0", "33.3%", "1"]
T2_ROW = ["5", "0", "0", "2", "2", "1", "1", "0", "0", "3", "1", "100.0%", "1"]
T3_ROW = ["0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "—", "0"]
TOTAL = ["11", "1", "1", "3", "4", "2", "4", "1", "1", "4", "1", "66.7%", "2"]


def test_county_figures_per_township_and_in_total(client, county_official, county):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY))
    assert response.status_code == 200
    html = response.content.decode()
    assert table(html) == {
        "龙溪镇": T1_ROW,
        "白泥镇": T2_ROW,
        '<b>"Tom & Jerry"</b>\'s town': T3_ROW,
        "Total": TOTAL,
    }
    assert cards(html) == {
        "households": "11",
        "appraised": "9",
        "dilapidated": "7",
        "cases": "6",
        "completed": "4",
        "completion": "66.7%",
        "overdue": "2",
    }
    assert "77.8% of appraised houses" in html  # 7 of 9
    assert "81.8% of households" in html  # 9 of 11 appraised


def test_latest_case_states_are_counted_for_the_whole_region(client, county_official, county):
    client.force_login(county_official)
    html = client.get(dashboard(COUNTY)).content.decode()
    states = dict(re.findall(r'<tr data-state="(\w+)">.*?<td class="num">(\d+)</td>', html, re.S))
    assert states == {
        "applied": "1",
        "village_reviewed": "0",
        "noticed": "0",
        "township_checked": "0",
        "county_approved": "0",
        "works_started": "1",
        "works_finished": "0",
        "completion_passed": "3",
        "paid": "1",
        "rejected": "1",
        "withdrawn": "0",
    }


def test_township_rows_drill_down_keeping_the_filters(client, county_official, county):
    client.force_login(county_official)
    html = client.get(dashboard(COUNTY, grade=["C", "D"])).content.decode()
    assert f'href="/maps/{T1}/progress/?grade=C&amp;grade=D">龙溪镇</a>' in html
    assert f'href="/maps/{T2}/progress/?grade=C&amp;grade=D">白泥镇</a>' in html
    assert f'href="/maps/{COUNTY}/?grade=C&amp;grade=D"' in html  # the map, same filters
    assert f'href="/households/?region={COUNTY}"' in html
    assert f'href="/maps/{COUNTY}/progress/?grade=C&amp;grade=D&amp;format=csv"' in html

    township = client.get(dashboard(T1)).content.decode()
    assert table(township) == {
        "青山村": ["5", "1", "1", "1", "2", "0", "2", "1", "1", "1", "0", "33.3%", "1"],
        "石门村": ["1", "0", "0", "0", "0", "1", "1", "0", "0", "0", "0", "—", "0"],
        "Total": T1_ROW,
    }


def test_breadcrumbs_lead_to_the_ancestors_dashboards(
    client, county_official, administrator, county
):
    client.force_login(administrator)
    html = client.get(dashboard(V1)).content.decode()
    crumbs = re.search(r'<nav class="breadcrumbs".*?</nav>', html, re.S).group(0)
    assert re.findall(r'href="([^"]+)"', crumbs) == [
        "/maps/52/progress/",
        "/maps/5203/progress/",
        f"/maps/{COUNTY}/progress/",
        f"/maps/{T1}/progress/",
    ]
    assert '<span aria-current="page">青山村</span>' in crumbs

    # A county official's breadcrumbs stop at their county.
    client.force_login(county_official)
    html = client.get(dashboard(V1)).content.decode()
    crumbs = re.search(r'<nav class="breadcrumbs".*?</nav>', html, re.S).group(0)
    assert re.findall(r'href="([^"]+)"', crumbs) == [
        f"/maps/{COUNTY}/progress/",
        f"/maps/{T1}/progress/",
    ]


def test_a_village_shows_its_own_row_and_no_totals(client, county_official, county):
    client.force_login(county_official)
    html = client.get(dashboard(V2)).content.decode()
    assert table(html) == {"河坝村": T2_ROW}
    assert "<tfoot>" not in html
    for chart in svgs(html):
        assert list(chart_rows(chart)) == ["河坝村"]


@pytest.mark.parametrize(
    "params, total",
    [
        # Only T2's households are registered poor.
        ({"key_group": "registered_poor"}, ["5", *T2_ROW[1:]]),
        # D houses: T1 has works started and the overdue one, T2 the paid and the overdue one.
        ({"grade": ["D"]}, ["4", "0", "0", "0", "4", "0", "0", "0", "1", "3", "0", "75.0%", "2"]),
        ({"grade": ["A", "B"]}, ["2", "1", "1", "0", "0", "0", "2", "0", "0", "0", "0", "—", "0"]),
        # No case: A, B, the unappraised house in V1B, the household without a house.
        ({"state": ["none"]}, ["4", "1", "1", "0", "0", "2", "4", "0", "0", "0", "0", "—", "0"]),
        (
            {"state": ["completion_passed", "rejected"]},
            ["4", "0", "0", "2", "2", "0", "0", "0", "0", "3", "1", "100.0%", "2"],
        ),
        # Funded in 2025: the part-paid overdue case only.
        ({"year": "2025"}, ["1", "0", "0", "0", "1", "0", "0", "0", "0", "1", "0", "100.0%", "1"]),
    ],
)
def test_filters_change_every_figure(client, county_official, county, params, total):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, **params))
    assert response.status_code == 200
    html = response.content.decode()
    assert table(html)["Total"] == total
    assert "count only the households that match the filters" in html


def test_a_township_official_sees_their_township_only(client, township_official, county):
    client.force_login(township_official)
    for code in (COUNTY, T2, V2, "520399999", "xyz"):
        assert client.get(dashboard(code)).status_code == 404, code
    html = client.get(dashboard(T1)).content.decode()
    assert table(html)["Total"] == T1_ROW
    assert cards(html)["households"] == "6"
    assert cards(html)["overdue"] == "1"  # T2's overdue case is not theirs
    # No breadcrumb above their own township.
    assert '<nav class="breadcrumbs"' not in html


def test_an_inspector_of_one_village_sees_that_village_only(client, make_user, county):
    client.force_login(make_user(Role.INSPECTOR, [county["village1"]]))
    assert client.get(dashboard(T1)).status_code == 404
    html = client.get(dashboard(V1)).content.decode()
    assert table(html) == {
        "青山村": ["5", "1", "1", "1", "2", "0", "2", "1", "1", "1", "0", "33.3%", "1"]
    }


def test_anonymous_is_sent_to_login(client, county):
    for url in (dashboard(COUNTY), dashboard(COUNTY, format="csv")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_the_charts_are_svg_with_one_titled_segment_per_non_empty_category(
    client, county_official, county
):
    client.force_login(county_official)
    html = client.get(dashboard(COUNTY)).content.decode()
    grade_chart, stage_chart = svgs(html)
    assert grade_chart.get("role") == "img"
    assert grade_chart.get("aria-label") == "Households by safety grade"
    assert stage_chart.get("aria-label") == "Households by stage of their latest case"
    tom = '<b>"Tom & Jerry"</b>\'s town'  # escaped in the page, plain text once parsed
    grades = chart_rows(grade_chart)
    assert list(grades) == ["All of 安居示范县", "龙溪镇", "白泥镇", tom]
    assert grades["龙溪镇"] == [
        ("A", "龙溪镇 — A: safe: 1 (16.7%)"),
        ("B", "龙溪镇 — B: basically safe: 1 (16.7%)"),
        ("C", "龙溪镇 — C: partly dangerous: 1 (16.7%)"),
        ("D", "龙溪镇 — D: dangerous as a whole: 2 (33.3%)"),
        ("none", "龙溪镇 — Not yet appraised: 1 (16.7%)"),
    ]
    assert [key for key, _ in grades["白泥镇"]] == ["C", "D", "none"]
    assert grades[tom] == [(None, f"{tom}: no households")]
    stages = chart_rows(stage_chart)
    # Stages among the households with a case: the one without is left out of the bar.
    assert stages["白泥镇"] == [
        ("completed", "白泥镇 — Completed: 3 (75.0%)"),
        ("closed", "白泥镇 — Rejected or withdrawn: 1 (25.0%)"),
    ]
    assert stages["龙溪镇"] == [
        ("approval", "龙溪镇 — Being approved: 1 (33.3%)"),
        ("works", "龙溪镇 — Works under way: 1 (33.3%)"),
        ("completed", "龙溪镇 — Completed: 1 (33.3%)"),
    ]
    assert [key for key, _ in stages["All of 安居示范县"]] == [
        "approval",
        "works",
        "completed",
        "closed",
    ]
    assert stages[tom] == [(None, f"{tom}: no cases")]
    totals = {
        g.find(f"{SVG}text").text: g.findall(f"{SVG}text")[1].text
        for g in stage_chart.iter(f"{SVG}g")
    }
    assert totals["All of 安居示范县"] == "7 households"  # of 11: 4 have no case
    assert "households without a case are left out" in stage_chart.find(f"{SVG}desc").text
    assert "households without a case are left out" in html  # the visible caption
    # The label is escaped in the markup, never injected.
    assert '<b>"Tom' not in html
    # Nothing from elsewhere, no script.
    assert "<script" not in html
    assert "/static/maps/dashboard.css" in html


def test_segments_fill_the_bar_end_to_end():
    svg = ET.fromstring(
        charts.stacked_bars([charts.Bar(label="x", values=[1, 1, 1, 0, 4])], GRADES, label="Grades")
    )
    rects = list(svg.iter(f"{SVG}rect"))
    assert [r.get("data-key") for r in rects] == ["A", "B", "C", "none"]
    starts = [float(r.get("x").rstrip("%")) for r in rects]
    widths = [float(r.get("width").rstrip("%")) for r in rects]
    assert starts[0] == 0
    for start, width, following in zip(starts, widths, starts[1:], strict=False):
        assert start + width == pytest.approx(following, abs=0.001)
    assert starts[-1] + widths[-1] == pytest.approx(100, abs=0.001)
    assert widths[-1] == pytest.approx(400 / 7, abs=0.001)


def test_csv_has_the_table_with_a_bom_and_the_region_in_its_name(client, county_official, county):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, format="csv"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="anju-progress-520399.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [
        HEADER,
        [T1, "龙溪镇", *cells("6 1 1 1 2 1 3 1 1 1 0 33.3 1 40000.00 0.00 20000.00")],
        [T2, "白泥镇", *cells("5 0 0 2 2 1 1 0 0 3 1 100.0 1 60000.00 25000.00 15000.00")],
        [T3, '<b>"Tom & Jerry"</b>\'s town', *["0"] * 11, "", "0", "0.00", "0.00", "0.00"],
        [COUNTY, "Total", *cells("11 1 1 3 4 2 4 1 1 4 1 66.7 2 100000.00 25000.00 35000.00")],
    ]


def test_csv_follows_the_filters_and_guards_against_formulas(client, county_official, county):
    make_region("520399103", '=HYPERLINK("x")')
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, format="csv", grade="D"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[-1] == [
        COUNTY,
        "Total",
        "4",
        "0",
        "0",
        "0",
        "4",
        "0",
        "0",
        "0",
        "1",
        "3",
        "0",
        "75.0",
        "2",
        "80000.00",
        "25000.00",
        "35000.00",
    ]
    assert rows[-2][:2] == ["520399103", '\'=HYPERLINK("x")']


def test_csv_of_a_village_is_its_own_row(client, county_official, county):
    client.force_login(county_official)
    response = client.get(dashboard(V1B, format="csv"))
    assert response["Content-Disposition"] == f'attachment; filename="anju-progress-{V1B}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [
        HEADER,
        [
            V1B,
            "石门村",
            "1",
            "0",
            "0",
            "0",
            "0",
            "1",
            "1",
            "0",
            "0",
            "0",
            "0",
            "",
            "0",
            "0.00",
            "0.00",
            "0.00",
        ],
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"year": "abc"}, "Enter a whole number."),
        ({"year": "1800"}, "Ensure this value is greater than or equal to 1990."),
        ({"grade": "E"}, "Select a valid choice. E is not one of the available choices."),
        ({"state": "built"}, "Select a valid choice. built is not one of the available choices."),
        (
            {"key_group": "nobody"},
            "Select a valid choice. That choice is not one of the available choices.",
        ),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_is_wrong(
    client, county_official, county, params, message
):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, **params))
    assert response.status_code == 400
    html = response.content.decode()
    assert f'<span class="field-error">{message}</span>' in html
    assert "Correct the filters above to see the figures." in html
    assert '<table class="counts progress-table">' not in html
    assert "<svg" not in html

    csv_response = client.get(dashboard(COUNTY, format="csv", **params))
    assert csv_response.status_code == 400
    assert csv_response["Content-Type"] == "text/plain; charset=utf-8"
    assert message in csv_response.content.decode()


def test_an_unknown_format_is_a_400(client, county_official, county):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, format="xls"))
    assert response.status_code == 400
    assert response.content.decode() == "Format: “xls” is not one of: html, csv."


def test_the_map_colour_choice_is_ignored(client, county_official, county):
    client.force_login(county_official)
    response = client.get(dashboard(COUNTY, colour="rainbow"))
    assert response.status_code == 200
    assert 'name="colour"' not in response.content.decode()


def test_the_page_speaks_the_readers_language(client, county_official, county):
    client.force_login(county_official)
    html = client.get(dashboard(COUNTY), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="zh-hans">' in html
    assert '<tr data-state="applied">\n        <th scope="row">已申请</th>' in html


# The session with its user, the user's regions, the region, its children, the two GROUP
# BYs, the money's one, the breadcrumbs, the key groups of the filter form.
QUERY_LIMIT = 9


def test_query_count_does_not_grow_with_regions_or_households(
    client, county_official, county, django_assert_max_num_queries
):
    client.force_login(county_official)
    with django_assert_max_num_queries(QUERY_LIMIT):
        small = client.get(dashboard(COUNTY, grade=["C", "D"]))
    assert small.status_code == 200

    for n in range(10):
        township = make_region(f"5203991{n + 10:02d}", f"镇{n}")
        village = make_region(f"{township.code}200", f"村{n}")
        add_household(village, SafetyGrade.C, CaseState.WORKS_STARTED)
        add_household(village, SafetyGrade.D)
    with django_assert_max_num_queries(QUERY_LIMIT):
        large = client.get(dashboard(COUNTY, grade=["C", "D"]))
    assert large.status_code == 200
    assert len(table(large.content.decode())) == 4 + 10
    with django_assert_max_num_queries(QUERY_LIMIT):
        assert client.get(dashboard(COUNTY, format="csv")).status_code == 200


def test_the_page_in_a_browser_loads_nothing_from_outside(
    page, live_server, county_official, county
):
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}{dashboard(COUNTY)}")
    charts_on_page = page.locator("svg.chart")
    assert charts_on_page.count() == 2
    box = charts_on_page.first.bounding_box()
    assert box["width"] > 400 and box["height"] == 4 * 44 - 10  # four rows of 44 px
    # The stylesheet applied: seven cards side by side on a wide screen.
    tops = {
        round(b["y"])
        for b in page.locator(".summary-card").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect())"
        )
    }
    assert len(tops) == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 800})
    page.screenshot(path=ARTIFACTS / "dashboard-360.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.external_requests == []
