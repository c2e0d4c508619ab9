"""The photo archive: a ZIP of a region's photo evidence with a manifest, for an archive
office or an auditor to keep.

Layout: ``<village name>/<archive number>/<stage>/<angle>/<photo key>.<ext>``, stage and
angle as their codes (before/during/after, front/left/...): the same paths in every
language, safe in any file system and in a script, and sorted the same way each time; the
manifest gives their labels in the export's language. The photo key (its storage UUID) names
the file, so two photos of one slot never collide and a file is traced back to its record.

Administrators get the originals, byte for byte as uploaded; everyone else gets the display
copies (EXIF stripped, downscaled): the originals are private (see Photo.original).

``manifest.csv`` (UTF-8 with a BOM, so that Excel opens it as UTF-8) has one row per photo,
including the ones not in the ZIP, with the SHA-256 of the file as written into the ZIP
(computed while copying, so it is what the reader holds) next to the SHA-256 recorded when
the original was uploaded.

A photo whose file is missing from storage does not stop the archive: it gets a manifest
row saying so and no file. An archive covers hundreds of households; withholding all of them
for one lost file helps nobody, and the row makes the gap visible where an auditor looks.
A photo not yet processed (no display copy) is listed the same way for non-administrators.

Streaming: rows come from the database in chunks, each file is copied from storage in 1 MiB
pieces into its ZIP entry (stored, not deflated: JPEGs do not compress), and the manifest is
written to a work file as it goes; nothing holds the archive, or a whole photo, in memory
beyond one piece.
"""

import csv
import hashlib
import re
import zipfile

from django.contrib.gis.db.models.functions import Distance
from django.core.files.storage import default_storage
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.scoping import scope
from inspections.evidence import flag_detail
from inspections.models import Photo, PhotoAngle, PhotoFlag, PhotoStage, PhotoStatus
from renovation.models import RenovationCase
from reports.errors import ExportError
from reports.scope import funding_year_of, region_of

COPY_CHUNK = 1024 * 1024
FETCH_ROWS = 500
MANIFEST = "manifest.csv"

# File name extension by the original's format (Pillow's names, as stored).
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "HEIF": "heic", "HEIC": "heic"}
# Characters that Windows, macOS or a ZIP reader would refuse or take as a separator.
UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')

STAGE_ORDER = Case(
    *(When(stage=stage, then=Value(i)) for i, stage in enumerate(PhotoStage.values)),
    default=Value(len(PhotoStage.values)),
    output_field=IntegerField(),
)

# The columns read per photo, in this order.
COLUMNS = (
    "key",
    "original",
    "display",
    "original_format",
    "sha256",
    "stage",
    "angle",
    "taken_at",
    "gps",
    "status",
    "flags",
    "created_at",
    "inspection__house__household__archive_no",
    "inspection__house__household__village__code",
    "inspection__house__household__village__name",
    "distance",
)


def safe_name(text: str) -> str:
    """A folder or file name from free text: unsafe characters become "_", and no trailing
    dot or space (Windows drops them), never empty."""
    cleaned = UNSAFE.sub("_", str(text)).strip().rstrip(". ")
    return cleaned or "_"


def photos_query(*, user, region, funding_year: int | None):
    """The photos of the region's households that the user sees; with a funding year, only
    those of houses with a case funded that year."""
    village_code = "inspection__house__household__village__code"
    photos = scope(Photo.objects.all(), user, village_code).filter(
        **{f"{village_code}__startswith": region.code}
    )
    if funding_year is not None:
        photos = photos.filter(
            inspection__house__in=RenovationCase.objects.filter(funding_year=funding_year).values(
                "house"
            )
        )
    return (
        photos.annotate(
            # Geodesic, on the WGS84 ellipsoid, by the database: as the evidence check measures.
            distance=Distance("gps", "inspection__house__household__location", spheroid=True),
            stage_order=STAGE_ORDER,
        )
        .order_by(
            village_code,
            "inspection__house__household__archive_no",
            "stage_order",
            "angle",
            "created_at",
            "pk",
        )
        .values_list(*COLUMNS)
    )


def manifest_header() -> list[str]:
    return [
        _("Path in the archive"),
        _("Archive number"),
        _("Village code"),
        _("Village"),
        _("Stage"),
        _("Angle"),
        _("Photo key"),
        _("File"),
        _("SHA-256 of the file in the archive"),
        _("Size (bytes)"),
        _("SHA-256 of the original as uploaded"),
        _("Taken at"),
        _("GPS longitude"),
        _("GPS latitude"),
        _("Distance to the house (m)"),
        _("Evidence flags"),
        _("Status"),
        _("Note"),
    ]


def flags_in_words(flags) -> str:
    """Each evidence flag as its label and its particulars, in the export's language."""
    words = []
    for flag in flags or []:
        code = flag.get("code", "")
        label = PhotoFlag(code).label if code in PhotoFlag.values else code
        detail = flag_detail(flag)
        words.append(f"{label} ({detail})" if detail else str(label))
    return "; ".join(words)


def _label(choices, code: str) -> str:
    return str(choices(code).label) if code in choices.values else code


def _open_first(name: str):
    """The stored file opened, with its first piece already read (so a missing file shows
    before its ZIP entry is begun), or (None, None) when storage has no such file."""
    if not name:
        return None, None
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        return None, None
    try:
        first = handle.read(COPY_CHUNK)
    except FileNotFoundError:  # storages that open lazily (S3) find out on the first read
        handle.close()
        return None, None
    return handle, first


def _copy(archive: zipfile.ZipFile, arcname: str, handle, first: bytes, when) -> tuple[str, int]:
    """Copy an opened stored file into a new stored (not deflated) ZIP entry, piece by
    piece; return the SHA-256 and size of what was written."""
    info = zipfile.ZipInfo(arcname, date_time=timezone.localtime(when).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    digest = hashlib.sha256()
    size = 0
    with handle, archive.open(info, "w", force_zip64=True) as entry:
        chunk = first
        while chunk:
            digest.update(chunk)
            entry.write(chunk)
            size += len(chunk)
            chunk = handle.read(COPY_CHUNK)
    return digest.hexdigest(), size


def build(job) -> None:
    """The region's photo archive (see the module docstring)."""
    region = region_of(job)
    if region is None:
        raise ExportError(_("A photo archive needs a region."))
    photos = photos_query(user=job.user, region=region, funding_year=funding_year_of(job))
    job.set_total(photos.count(), "photos")
    originals = job.user.is_administrator
    manifest_path = job.workdir / MANIFEST
    with (
        zipfile.ZipFile(job.path, "w", allowZip64=True) as archive,
        open(manifest_path, "w", encoding="utf-8-sig", newline="") as manifest_file,
    ):
        manifest = csv.writer(manifest_file)
        manifest.writerow(manifest_header())
        for row in photos.iterator(chunk_size=FETCH_ROWS):
            manifest.writerow(_add_photo(archive, dict(zip(COLUMNS, row, strict=True)), originals))
            job.advance(1)
        manifest_file.close()
        archive.write(manifest_path, MANIFEST, compress_type=zipfile.ZIP_DEFLATED)


def _add_photo(archive: zipfile.ZipFile, photo: dict, originals: bool) -> list:
    """Copy one photo into the archive and return its manifest row."""
    archive_no = photo["inspection__house__household__archive_no"]
    if originals:
        name = photo["original"]
        extension = EXTENSIONS.get(photo["original_format"].upper(), "") or (
            safe_name(photo["original_format"].lower()) or "bin"
        )
        kind = _("original")
    else:
        name = photo["display"]
        extension = "jpg"
        kind = _("display copy")
    arcname = "/".join(
        [
            safe_name(photo["inspection__house__household__village__name"]),
            safe_name(archive_no),
            photo["stage"],
            photo["angle"],
            f"{photo['key']}.{extension}",
        ]
    )
    sha256, size, note = "", "", ""
    if not name:
        arcname, kind = "", ""
        note = _("Not processed yet: there is no display copy to include.")
    else:
        handle, first = _open_first(name)
        if handle is None:
            arcname, kind = "", ""
            note = _("The file is missing from storage: %(name)s") % {"name": name}
        else:
            sha256, size = _copy(archive, arcname, handle, first, photo["created_at"])
            if originals and sha256 != photo["sha256"]:
                note = _("The stored original differs from the SHA-256 recorded at upload.")
    gps, distance = photo["gps"], photo["distance"]
    return [
        arcname,
        archive_no,
        photo["inspection__house__household__village__code"],
        photo["inspection__house__household__village__name"],
        _label(PhotoStage, photo["stage"]),
        _label(PhotoAngle, photo["angle"]),
        str(photo["key"]),
        kind,
        sha256,
        size,
        photo["sha256"],
        timezone.localtime(photo["taken_at"]).isoformat(timespec="seconds")
        if photo["taken_at"]
        else "",
        f"{gps.x:.6f}" if gps is not None else "",
        f"{gps.y:.6f}" if gps is not None else "",
        f"{distance.m:.1f}" if distance is not None else "",
        flags_in_words(photo["flags"]),
        _label(PhotoStatus, photo["status"]),
        note,
    ]
