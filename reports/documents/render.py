"""From a template to a PDF: what every document Anju issues shares.

- A URL fetcher that reads only our own storage (`anju-storage:<key>`, under the photo
  folders) and `data:` URIs. Templates are ours, but the text in them comes from the
  registry; whatever slipped through, a document never fetches from the network (the
  servers may have none, and a fetched picture would not be evidence) and never reads an
  original photo (private) or another export.
- The stamp on every page (document number, issue time, audit chain head, QR code of the
  verify URL) as a running element in the bottom margin, and the page numbers "Page X of
  Y" in a margin box, worded by gettext and turned into CSS counters.
- The number also goes into the PDF's metadata (`<meta name="keywords">`, `<title>`):
  reports.services.document_verify reads it back from a file someone hands in.
- Long documents are rendered in parts and joined (join_with_page_numbers): WeasyPrint
  lays out a whole document in memory, photos included, so a county's report in one go
  would hold every photo of the county at once.

Fonts are the system's Noto CJK (Debian: fonts-noto-cjk), found by fontconfig: nothing is
downloaded while rendering.
"""

import logging
import mimetypes
import re
from pathlib import Path
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import segno
from django.conf import settings
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from PIL import ImageFile
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from reports.jobs import Stamp

# WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES when it is imported. That would
# let a truncated photo through the upload checks of any process that has made a PDF (a
# worker runs both), so it is put back: our display copies are whole, and a truncated one
# is an error worth seeing.
ImageFile.LOAD_TRUNCATED_IMAGES = False

logger = logging.getLogger(__name__)
# WeasyPrint reports each rendering step at INFO: seven lines a page, in the worker's log, for
# every document. Quietened unless the logging settings say otherwise.
_progress = logging.getLogger("weasyprint.progress")
if _progress.level == logging.NOTSET:
    _progress.setLevel(logging.WARNING)

STORAGE_SCHEME = "anju-storage"
# The storage folders a document may read: the photos' display copies and thumbnails.
READABLE_PREFIXES = ("photos/display/", "photos/thumb/")
# Embedded pictures are downsampled to this resolution at the size they are printed: a
# 1600 px display copy printed 6 cm wide keeps ~470 px. Sharp on paper, and the files
# stay a few hundred kB per household instead of megabytes.
IMAGE_DPI = 200


class RefusedURL(ValueError):
    """A document asked for something outside our storage (WeasyPrint logs and skips it)."""


class DocumentFetcher(URLFetcher):
    """Serves `anju-storage:` keys from default_storage and `data:` URIs; refuses the rest.

    `refused` keeps what was refused, so a test (or a log reader) can see it happened.
    """

    def __init__(self):
        super().__init__(allowed_protocols={"data", STORAGE_SCHEME}, allow_redirects=False)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == STORAGE_SCHEME:
            key = unquote(url.split(":", 1)[1])
            if key.startswith(READABLE_PREFIXES) and ".." not in key.split("/"):
                content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
                handle = default_storage.open(key, "rb")
                return URLFetcherResponse(url, handle, {"Content-Type": content_type})
        self.refused.append(url)
        logger.warning("document fetcher refused %s", url[:200])
        raise RefusedURL(f"Documents read only their own storage; refused {url[:200]}")


def storage_url(key: str) -> str:
    """The URL a template gives an <img> for a file in our storage (see DocumentFetcher)."""
    return f"{STORAGE_SCHEME}:{quote(str(key))}"


def css_string(text: str) -> str:
    """`text` as a quoted CSS string (for `content:` in the page margins)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ")
    return f'"{escaped}"'


_COUNTER = re.compile(r"(%\((?:page|pages)\)s)")


def page_counter_css() -> SafeString:
    """ "Page X of Y" in the active language, as a CSS `content` value with page counters.

    The wording is one gettext string ("Page %(page)s of %(pages)s"), so a translator can
    put the numbers where their language wants them (第 %(page)s 页，共 %(pages)s 页)."""
    parts = []
    for part in _COUNTER.split(_("Page %(page)s of %(pages)s")):
        if part == "%(page)s":
            parts.append("counter(page)")
        elif part == "%(pages)s":
            parts.append("counter(pages)")
        elif part:
            parts.append(css_string(part))
    return mark_safe(" ".join(parts))  # built only from css_string and fixed names


def qr_data_uri(url: str) -> str:
    """The QR code of `url` as an SVG data URI (scales to any size without blurring)."""
    return segno.make_qr(url, error="m").svg_data_uri(border=0)


def stamp_context(stamp: Stamp) -> dict:
    """What the stamp on every page shows, with the issue time in the site's time zone."""
    # The site's zone, named on the page, whatever zone the worker happens to have active.
    issued = timezone.localtime(stamp.issued_at, ZoneInfo(settings.TIME_ZONE))
    offset = issued.strftime("%z")
    return {
        "number": stamp.number,
        "issued_at": issued.strftime("%Y-%m-%d %H:%M:%S"),
        "time_zone": f"{settings.TIME_ZONE}, UTC{offset[:3]}:{offset[3:]}",
        "chain_head": stamp.chain_head,
        "verify_url": stamp.verify_url,
        "qr": qr_data_uri(stamp.verify_url),
    }


def document_context(*, stamp: Stamp, title: str, header: str, page_numbers: bool = True) -> dict:
    """The context every document template (reports/pdf/base.html) needs.

    title: the PDF's title (metadata) and the heading of the header line;
    header: the text in the top margin of every page;
    page_numbers: False for the parts of a joined document (join_with_page_numbers adds
    them afterwards, counted over the whole document).
    """
    return {
        "stamp": stamp_context(stamp),
        "title": title,
        "header_css": mark_safe(css_string(header)),
        "brand_css": mark_safe(css_string(_("Anju"))),
        "page_css": page_counter_css() if page_numbers else mark_safe('""'),
        "language": get_language() or settings.LANGUAGE_CODE,
    }


def html_to_pdf(html: str, target: Path) -> DocumentFetcher:
    """Write the PDF of `html` to `target`; the fetcher returned says what it refused."""
    fetcher = DocumentFetcher()
    HTML(string=html, url_fetcher=fetcher).write_pdf(target, dpi=IMAGE_DPI)
    return fetcher


def render_pdf(template_name: str, context: dict, target: Path) -> DocumentFetcher:
    """Render a template of templates/reports/pdf/ to a PDF file."""
    return html_to_pdf(render_to_string(template_name, context), target)


def pdf_page_count(path: Path) -> int:
    return len(PdfReader(path).pages)


def join_with_page_numbers(
    parts: list[Path], target: Path, *, stamp: Stamp, title: str, workdir: Path
) -> int:
    """Join PDFs rendered with `page_numbers=False` into `target`, numbered across parts.

    The numbers come from one more, text-only WeasyPrint document with as many empty
    pages as the parts hold and the same page margins, laid over each page, so "Page X of
    Y" counts the whole report while no part had to be laid out with another. Returns the
    number of pages.
    """
    counts = [pdf_page_count(part) for part in parts]
    total = sum(counts)
    numbers = workdir / "page-numbers.pdf"
    context = {
        **document_context(stamp=stamp, title=title, header=""),
        "pages": range(total),
    }
    render_pdf("reports/pdf/page_numbers.html", context, numbers)
    overlay = PdfReader(numbers).pages
    writer = PdfWriter()
    index = 0
    for part in parts:
        for page in PdfReader(part).pages:
            # Merged once in the writer: pypdf edits only pages a writer owns.
            writer.add_page(page).merge_page(overlay[index])
            index += 1
    writer.add_metadata(
        {
            "/Title": title,
            "/Keywords": stamp.number,
            "/Creator": "Anju",
            "/Producer": "Anju (WeasyPrint, pypdf)",
        }
    )
    with open(target, "wb") as handle:
        writer.write(handle)
    numbers.unlink(missing_ok=True)
    return total
