"""The PDF documents from the demo county: the household file (一户一档) and the completion
acceptance report (竣工验收报告), as PDF and as ZIP, in both languages.

Each PDF is read back with pypdf (text, images, metadata) and drawn to PNG with pdftoppm
into test-artifacts/reports/, for a person to look at.
"""

import io
import re
import shutil
import subprocess
import time
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import translation
from django.utils.translation import gettext
from pypdf import PdfReader, PdfWriter

from housing import idnumbers
from housing.models import Household
from inspections.models import Photo, PhotoStage, PhotoStatus
from renovation.models import RenovationCase
from reports.documents import mapsvg
from reports.documents.household_file import phone_mask
from reports.documents.render import DocumentFetcher, RefusedURL, html_to_pdf, storage_url
from reports.models import ExportStatus
from reports.services import document_verify
from tests.conftest import ARTIFACTS
from tests.reports.conftest import a_household_outside, export_bytes, run_export

LANGUAGES = ["en", "zh-hans"]
NUMBER = re.compile(r"AJ-\d{4}-\d{6,}")


# --- reading the files back --------------------------------------------------------------------


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


def image_count(data: bytes) -> int:
    """How many different pictures the PDF embeds (WeasyPrint lists all of a document's
    pictures in every page's resources, so they are counted by name)."""
    return len({image.name for page in PdfReader(io.BytesIO(data)).pages for image in page.images})


def page_label(language: str, page: int, pages: int) -> str:
    with translation.override(language):
        return gettext("Page %(page)s of %(pages)s") % {"page": page, "pages": pages}


def words(language: str, text: str) -> str:
    with translation.override(language):
        return gettext(text)


def save_pngs(data: bytes, name: str) -> None:
    """The PDF and its pages as PNGs (pdftoppm -r 60) in test-artifacts/reports/."""
    folder = ARTIFACTS / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    pdf = folder / f"{name}.pdf"
    pdf.write_bytes(data)
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "60", "-png", str(pdf), str(folder / name)], check=True, timeout=120
        )
        assert list(folder.glob(f"{name}-*.png")), "pdftoppm drew the pages"


def assert_stamped_on_every_page(data: bytes, number: str, language: str) -> list[str]:
    """Every page carries the document number and "Page X of N"; the metadata the number."""
    texts = page_texts(data)
    assert len(texts) >= 1
    for index, text in enumerate(texts, start=1):
        assert number in text, f"page {index} lacks the document number"
        label = page_label(language, index, len(texts))
        assert label in text, f"page {index} lacks “{label}”"
    meta = PdfReader(io.BytesIO(data)).metadata
    assert meta["/Keywords"] == number
    assert number in meta["/Title"]
    return texts


def photographed_household_with_case() -> Household:
    """The first household (archive order) with ready photos, a case and an ID number."""
    return (
        Household.objects.filter(
            houses__cases__isnull=False,
            houses__inspections__photos__status=PhotoStatus.READY,
            houses__is_current=True,
        )
        .exclude(head_id_number="")
        .distinct()
        .order_by("archive_no")
        .first()
    )


def ready_photos_of(household: Household) -> int:
    return (
        Photo.objects.filter(
            inspection__house__household=household,
            inspection__house__is_current=True,
            status=PhotoStatus.READY,
        )
        .exclude(display="")
        .count()
    )


# --- the household file ------------------------------------------------------------------------


@pytest.mark.usefixtures("demo_county")
class TestHouseholdFile:
    def test_a_photo_whose_file_is_missing_says_so_on_paper(self, demo_county, demo_media):
        household = photographed_household_with_case()
        photo = (
            Photo.objects.filter(inspection__house__household=household, status=PhotoStatus.READY)
            .exclude(display="")
            .order_by("id")
            .first()
        )
        stored = demo_media / photo.display.name
        hidden = stored.with_suffix(".hidden")
        stored.rename(hidden)
        try:
            export = run_export(
                demo_county.auditor, "household_file", "pdf", household=household.pk
            )
        finally:
            hidden.rename(stored)
        assert export.status == ExportStatus.DONE, export.error
        data = export_bytes(export)
        text = "\n".join(page_texts(data))
        assert "The photo's file is missing from storage." in text
        assert image_count(data) == ready_photos_of(household) - 1

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_the_file_holds_the_household_its_photos_and_the_stamp(self, demo_county, language):
        household = photographed_household_with_case()
        started = time.monotonic()
        export = run_export(
            demo_county.auditor, "household_file", "pdf", language=language, household=household.pk
        )
        seconds = time.monotonic() - started
        assert export.status == ExportStatus.DONE, export.error
        assert (export.done, export.total, export.unit) == (1, 1, "households")
        data = export_bytes(export)
        assert data.startswith(b"%PDF-")
        texts = assert_stamped_on_every_page(data, export.number, language)
        text = "\n".join(texts)
        assert household.archive_no in text
        assert household.head_name in text  # a Chinese name, in the CJK font
        assert re.search(r"[\u4e00-\u9fff]", household.head_name)
        for heading in ("Family members", "Photos", "Renovation cases", "Checked by", "Opinion"):
            assert words(language, heading) in text
        assert export.chain_head in text, "the chain head, all 64 hex characters"
        # Every ready photo of the current house is embedded (the QR code is vector art).
        assert image_count(data) == ready_photos_of(household) > 0
        save_pngs(data, f"household-file-{language}")
        print(f"household file ({language}): {seconds:.2f} s, {len(texts)} pages")

    def test_id_numbers_are_masked_for_an_auditor_and_full_for_an_administrator(self, demo_county):
        household = photographed_household_with_case()
        full = household.head_id_number
        masked_text = "\n".join(
            page_texts(
                export_bytes(
                    run_export(demo_county.auditor, "household_file", "pdf", household=household.pk)
                )
            )
        )
        admin_text = "\n".join(
            page_texts(
                export_bytes(
                    run_export(demo_county.admin, "household_file", "pdf", household=household.pk)
                )
            )
        )
        assert full not in masked_text
        assert idnumbers.mask(full) in masked_text
        assert full in admin_text
        for member in household.members.exclude(id_number=""):
            assert member.id_number not in masked_text
            assert member.id_number in admin_text
            # The birth date is the part of the number the mask hides: the year only.
            if member.birth_date:
                assert member.birth_date.isoformat() not in masked_text
                assert member.birth_date.isoformat() in admin_text
        if household.phone:
            assert phone_mask(household.phone) in masked_text
            assert household.phone in admin_text

    def test_a_household_outside_the_users_regions_fails_with_a_clear_message(self, demo_county):
        outside = a_household_outside(demo_county.township)
        export = run_export(demo_county.township, "household_file", "pdf", household=outside.pk)
        assert export.status == ExportStatus.FAILED
        assert export.error == f"There is no household {outside.pk} among your regions."
        assert export.file == ""
        assert export.event_id is None

    def test_the_number_in_the_metadata_finds_an_altered_copy(self, demo_county):
        household = photographed_household_with_case()
        export = run_export(demo_county.auditor, "household_file", "pdf", household=household.pk)
        data = export_bytes(export)
        assert document_verify(fileobj=io.BytesIO(data)).outcome == "issued"
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.remove_page(len(writer.pages) - 1)  # a page taken out
        altered = io.BytesIO()
        writer.write(altered)
        result = document_verify(fileobj=altered)
        assert (result.outcome, result.claimed_number) == ("altered", export.number)


# --- the completion acceptance report ----------------------------------------------------------

COUNTY = "520399"


def report_year() -> int:
    """The funding year with the most completion checks passed in the demo county."""
    years = list(
        RenovationCase.objects.filter(completion_passed_at__isnull=False).values_list(
            "funding_year", flat=True
        )
    )
    return max(set(years), key=years.count)


def checked_cases(year: int):
    from reports.documents.acceptance import checked_cases as checked

    return checked(RenovationCase.objects.filter(funding_year=year))


def households_with_cases(year: int) -> list[Household]:
    return list(
        Household.objects.filter(houses__cases__funding_year=year)
        .distinct()
        .select_related("village")
        .order_by("village__code", "archive_no")
    )


@pytest.mark.usefixtures("demo_county")
class TestAcceptanceReport:
    @pytest.mark.parametrize("language", LANGUAGES)
    def test_the_report_pdf_has_the_summary_and_a_section_per_checked_case(
        self, demo_county, language
    ):
        year = report_year()
        checked = list(checked_cases(year).select_related("house__household"))
        assert checked, "the demo county has checked cases"
        export = run_export(
            demo_county.county,
            "acceptance",
            "pdf",
            language=language,
            region=COUNTY,
            funding_year=year,
        )
        assert export.status == ExportStatus.DONE, export.error
        assert (export.done, export.total, export.unit) == (len(checked), len(checked), "cases")
        data = export_bytes(export)
        texts = assert_stamped_on_every_page(data, export.number, language)
        assert len(texts) >= 1 + len(checked), "the summary, then a page or more per case"
        text = "\n".join(texts)
        assert words(language, "Completion acceptance report") in text
        assert words(language, "Cases by state") in text
        assert words(language, "Anomalies") in text
        for case in checked:
            assert case.house.household.archive_no in text
            assert case.house.household.head_name in text
        after = Photo.objects.filter(
            inspection__in=[
                c.completion_inspection_id for c in checked if c.completion_inspection_id
            ],
            stage=PhotoStage.AFTER,
            status=PhotoStatus.READY,
        ).count()
        assert image_count(data) == after > 0, "the completion visits' after-works photos"
        save_pngs(data, f"acceptance-{language}")

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_the_zip_holds_the_report_and_a_file_per_household_with_a_case(
        self, demo_county, language
    ):
        year = report_year()
        households = households_with_cases(year)
        started = time.monotonic()
        export = run_export(
            demo_county.county,
            "acceptance",
            "zip",
            language=language,
            region=COUNTY,
            funding_year=year,
        )
        seconds = time.monotonic() - started
        assert export.status == ExportStatus.DONE, export.error
        assert (export.done, export.total, export.unit) == (
            len(households),
            len(households),
            "households",
        )
        with zipfile.ZipFile(io.BytesIO(export_bytes(export))) as archive:
            names = archive.namelist()
            assert names[0] == f"{COUNTY}-{year}-acceptance-report.pdf"
            assert names[1:] == [
                f"{h.village.code}-{h.village.name}/{h.archive_no}.pdf" for h in households
            ]
            for name in names:
                data = archive.read(name)
                assert data.startswith(b"%PDF-"), name
                assert PdfReader(io.BytesIO(data)).metadata["/Keywords"] == export.number
            first = archive.read(names[1])
            assert households[0].archive_no in "\n".join(page_texts(first))
            save_pngs(first, f"acceptance-zip-household-{language}")
        print(
            f"acceptance zip ({language}): {len(households)} households in {seconds:.1f} s, "
            f"{seconds / max(len(households), 1):.2f} s a household with the report"
        )

    def test_a_region_outside_the_users_regions_fails_with_a_clear_message(self, demo_county):
        outside = a_household_outside(demo_county.township).village.code
        export = run_export(
            demo_county.township, "acceptance", "pdf", region=outside, funding_year=report_year()
        )
        assert export.status == ExportStatus.FAILED
        assert export.error == f"There is no region {outside} among your regions."
        assert export.file == ""

    def test_a_township_official_gets_only_the_cases_of_their_township(self, demo_county):
        year = report_year()
        township = demo_county.township.regions.get().code
        export = run_export(
            demo_county.township, "acceptance", "zip", region=COUNTY, funding_year=year
        )
        # The county is not among the township official's regions: refused, not narrowed.
        assert export.status == ExportStatus.FAILED
        export = run_export(
            demo_county.township, "acceptance", "zip", region=township, funding_year=year
        )
        assert export.status == ExportStatus.DONE, export.error
        with zipfile.ZipFile(io.BytesIO(export_bytes(export))) as archive:
            folders = {name.split("/")[0] for name in archive.namelist()[1:]}
        assert all(folder.startswith(township) for folder in folders)
        expected = {
            h.village.code
            for h in households_with_cases(year)
            if h.village.code.startswith(township)
        }
        assert {folder.split("-")[0] for folder in folders} == expected


# --- what the renderer may read, and the map ---------------------------------------------------


class TestRenderer:
    def test_the_fetcher_reads_photo_copies_and_data_uris_and_refuses_the_rest(self, settings):
        key = default_storage.save("photos/display/test.jpg", ContentFile(b"\xff\xd8jpeg"))
        default_storage.save("photos/original/secret.jpg", ContentFile(b"original"))
        fetcher = DocumentFetcher()
        assert fetcher.fetch(storage_url(key)).read() == b"\xff\xd8jpeg"
        assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
        for url in (
            "https://example.com/logo.png",
            "http://127.0.0.1/x.png",
            "file:///etc/passwd",
            storage_url("photos/original/secret.jpg"),
            storage_url("photos/display/../original/secret.jpg"),
            storage_url("exports/2026/01/AJ-2026-000001-household.pdf"),
        ):
            with pytest.raises(RefusedURL):
                fetcher.fetch(url)
        assert len(fetcher.refused) == 6

    def test_a_document_asking_for_the_network_renders_without_it(self, tmp_path):
        target = tmp_path / "out.pdf"
        fetcher = html_to_pdf(
            '<html><body><p>Hi</p><img src="https://example.com/a.png">'
            '<link rel="stylesheet" href="http://example.com/a.css"></body></html>',
            target,
        )
        assert target.read_bytes().startswith(b"%PDF-")
        assert sorted(fetcher.refused) == ["http://example.com/a.css", "https://example.com/a.png"]

    def test_the_map_places_the_house_the_points_and_a_far_point_at_the_edge(self):
        from django.contrib.gis.geos import MultiPolygon, Point, Polygon

        house = Point(107.9, 27.2, srid=4326)
        boundary = MultiPolygon(Polygon.from_bbox((107.89, 27.19, 107.91, 27.21)), srid=4326)
        points = [
            mapsvg.MapPoint(number=1, lon=107.90005, lat=27.20003, far=False, distance_m=6.0),
            mapsvg.MapPoint(number=2, lon=107.92, lat=27.2, far=True, distance_m=1978.0),
        ]
        drawn = mapsvg.household_map(
            house=house, boundary=boundary, points=points, distance_text=lambda m: f"{m:.0f} m"
        )
        assert drawn.overview.startswith("<svg") and drawn.detail.startswith("<svg")
        assert "2 → 1978 m" in drawn.detail, "the far point is drawn at the edge, with its distance"
        assert ">1<" in drawn.detail
        assert mapsvg.household_map(house=None, boundary=None, points=[], distance_text=str) is None


def test_phone_numbers_keep_their_first_three_and_last_four_digits():
    assert phone_mask("13812345678") == "138****5678"
    assert phone_mask("") == ""


def test_making_pdfs_leaves_the_photo_checks_refusing_truncated_images():
    """WeasyPrint turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process when it is
    imported; a worker that has made a PDF must still refuse a truncated upload."""
    from inspections import imaging
    from reports.documents import render  # noqa: F401  (imports WeasyPrint)
    from tests.inspections import images

    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.corrupt_jpeg())
    assert caught.value.code == "corrupt"
