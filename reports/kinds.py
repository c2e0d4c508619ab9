"""The one table of export kinds: what each makes, in which formats, for whom, from what.

Each kind names its builder by dotted path (imported when a job runs, so this table stays
cheap to import) and the parameters it reads from Export.params:

- `filters`: the query string of a list page (households, cases, worklist), re-read with
  that page's own filter form for the export's user, so "export what I see" is exactly
  what the page showed;
- `region`: a region code in the user's regions (the export covers it and all under it);
- `funding_year`, `household` (a household id in the user's regions), `crs` (4326/4490).

Scope is applied twice: when the export is asked for (reports.forms) and again by the
builder through the app selectors when it runs, so a region taken from the user in the
meantime is not exported.
"""

from dataclasses import dataclass
from importlib import import_module

from django.utils.translation import gettext_lazy as _

from accounts.models import Role
from accounts.permissions import has_role
from audit.permissions import can_view_worklist

# Who may export at all: the office roles. Inspectors work on the phone, not with ledgers.
EXPORT_ROLES = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR)


@dataclass(frozen=True)
class Format:
    code: str
    label: str
    extension: str
    content_type: str


FORMATS = {
    f.code: f
    for f in [
        Format("csv", _("CSV (UTF-8)"), "csv", "text/csv; charset=utf-8"),
        Format(
            "xlsx",
            _("Excel (XLSX)"),
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        Format("gpkg", _("GeoPackage"), "gpkg", "application/geopackage+sqlite3"),
        Format("shp", _("Shapefile (zipped)"), "zip", "application/zip"),
        Format("kml", _("KML"), "kml", "application/vnd.google-earth.kml+xml"),
        Format("geojson", _("GeoJSON"), "geojson", "application/geo+json"),
        Format("zip", _("ZIP"), "zip", "application/zip"),
        Format("pdf", _("PDF"), "pdf", "application/pdf"),
    ]
}

CRS_CHOICES = [(4326, _("WGS84 (EPSG:4326)")), (4490, _("CGCS2000 (EPSG:4490)"))]


def _may_export(user) -> bool:
    return has_role(user, *EXPORT_ROLES)


def _may_export_worklist(user) -> bool:
    return _may_export(user) and can_view_worklist(user)


@dataclass(frozen=True)
class ExportKind:
    code: str
    label: str
    formats: tuple[str, ...]
    builder: str  # "module.function"
    params: tuple[str, ...]  # which parameters it reads
    required: tuple[str, ...] = ()
    filters_form: str = ""  # for `filters`: the list page's form, "module.Class"
    may: object = _may_export
    slug: str = ""  # start of the file name

    def build(self, job) -> None:
        module, name = self.builder.rsplit(".", 1)
        getattr(import_module(module), name)(job)


LEDGER_FORMATS = ("xlsx", "csv")
GIS_FORMATS = ("gpkg", "shp", "kml", "geojson")

KINDS = {
    k.code: k
    for k in [
        ExportKind(
            "households",
            _("Ledger: households"),
            LEDGER_FORMATS,
            "reports.ledgers.build",
            ("filters",),
            filters_form="housing.forms.HouseholdFilterForm",
            slug="households",
        ),
        ExportKind(
            "members",
            _("Ledger: family members"),
            LEDGER_FORMATS,
            "reports.ledgers.build",
            ("region",),
            slug="members",
        ),
        ExportKind(
            "cases",
            _("Ledger: renovation cases"),
            LEDGER_FORMATS,
            "reports.ledgers.build",
            ("filters",),
            filters_form="renovation.forms.CaseFilterForm",
            slug="cases",
        ),
        ExportKind(
            "payments",
            _("Ledger: payments"),
            LEDGER_FORMATS,
            "reports.ledgers.build",
            ("region", "funding_year"),
            slug="payments",
        ),
        ExportKind(
            "worklist",
            _("Ledger: the auditor's worklist"),
            LEDGER_FORMATS,
            "reports.ledgers.build",
            ("filters",),
            filters_form="audit.views.WorklistFilterForm",
            may=_may_export_worklist,
            slug="worklist",
        ),
        ExportKind(
            "gis_households",
            _("Map layer: households"),
            GIS_FORMATS,
            "reports.gis.build_households",
            ("region", "crs"),
            slug="households-map",
        ),
        ExportKind(
            "gis_regions",
            _("Map layer: regions"),
            GIS_FORMATS,
            "reports.gis.build_regions",
            ("region", "crs"),
            slug="regions-map",
        ),
        ExportKind(
            "photos",
            _("Photo archive"),
            ("zip",),
            "reports.archive.build",
            ("region", "funding_year"),
            required=("region",),
            slug="photos",
        ),
        ExportKind(
            "household_file",
            _("One household, one file (PDF)"),
            ("pdf",),
            "reports.documents.household_file.build",
            ("household",),
            required=("household",),
            slug="household",
        ),
        ExportKind(
            "acceptance",
            _("Completion acceptance report"),
            ("pdf", "zip"),
            "reports.documents.acceptance.build",
            ("region", "funding_year"),
            required=("region", "funding_year"),
            slug="acceptance",
        ),
    ]
}


def kinds_for(user) -> list[ExportKind]:
    return [k for k in KINDS.values() if k.may(user)]
