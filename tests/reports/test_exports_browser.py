"""The exports page in a real browser: the form shows what the chosen kind takes, a running
export's progress bar moves on its own, and the list survives a reload."""

import pytest

from reports.models import Export, ExportStatus
from reports.runner import export_run
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import FamilyMemberFactory, HouseFactory, HouseholdFactory


def visible(page, name: str) -> bool:
    return page.locator(f'.export-field[data-param="{name}"]').is_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_export_is_asked_for_watched_and_downloaded(page, live_server, regions, county_official):
    for n in range(3):
        household = HouseholdFactory(village=regions["village1"], head_name=f"王{n}")
        HouseFactory(household=household)
        FamilyMemberFactory(household=household)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, live_server, county_official)
    page.goto(f"{live_server.url}/exports/")
    assert page.locator("h1").inner_text() == "Exports"

    # The form shows only what the chosen kind reads.
    page.select_option("select[name=kind]", "gis_households")
    assert visible(page, "region") and visible(page, "crs")
    assert not visible(page, "funding_year")
    assert page.locator("select[name=format] option:not([disabled])").all_inner_texts() == [
        "GeoPackage",
        "Shapefile (zipped)",
        "KML",
        "GeoJSON",
    ]
    page.select_option("select[name=kind]", "acceptance")
    assert visible(page, "region") and visible(page, "funding_year")
    assert not visible(page, "crs")
    assert page.locator("select[name=format]").input_value() == "pdf"

    # A job the worker has not picked up yet: the page polls it until it is done.
    export = Export.objects.create(
        user=county_official, kind="members", format="csv", params={}, language="en"
    )
    Export.objects.filter(pk=export.pk).update(number=f"AJ-2026-{export.pk:06d}")
    page.reload()
    row = page.locator(f"#export-{export.pk}")
    assert row.get_attribute("data-status") == "queued"
    assert "Queued" in row.inner_text()
    assert row.locator("a", has_text="Download").count() == 0
    export_run(export_id=export.pk)
    page.wait_for_selector(f'#export-{export.pk}[data-status="done"]', timeout=10_000)
    assert row.locator("progress").get_attribute("value") == "100"
    assert "3 / 3" in row.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "exports-page.png"), full_page=True)

    # It is still there after a reload, and downloads.
    page.reload()
    with page.expect_download() as download:
        page.locator(f"#export-{export.pk} a", has_text="Download").click()
    assert download.value.suggested_filename == f"AJ-2026-{export.pk:06d}-members.csv"
    assert Export.objects.get(pk=export.pk).status == ExportStatus.DONE

    assert errors == []
    assert page.external_requests == []
