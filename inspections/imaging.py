"""Image handling for photo evidence: checking, orientation, published copies, EXIF, pHash.

Pure functions over bytes and Pillow images; no database, no storage. The format is judged by
the file's content (magic bytes, then Pillow with an explicit allowlist of decoders), never by
its name or the content type the client claims.
"""

import dataclasses
import datetime
import io
import struct
import warnings
import zoneinfo

import numpy as np
import pillow_heif
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from PIL import ExifTags, Image, ImageCms, ImageMode, ImageOps

# Registered once, at import: Pillow learns to read HEIC/HEIF (what iPhones and many Android
# phones shoot). AVIF is not registered: it is not on the allowlist.
pillow_heif.register_heif_opener()
Image.MAX_IMAGE_PIXELS = settings.ANJU_PHOTO_MAX_PIXELS

# Pillow's format names of what we accept, keyed by how we name them in messages.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
FORMAT_LABELS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC/HEIF"}
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heif",
}

DISPLAY_SIZE = 1600  # long side of the display copy (px)
THUMBNAIL_SIZE = 320  # long side of the thumbnail (px)
DISPLAY_RESAMPLE = Image.Resampling.BICUBIC  # see display_copy
JPEG_QUALITY = 85

# ISO-BMFF major brands of HEIF still images (HEVC-coded and generic); "avif" is not here.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# EXIF tags (numbers from the EXIF 2.32 specification).
_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_TAG_OFFSET_TIME_DIGITIZED = 0x9012
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_GPS_H_POSITIONING_ERROR = 31


class ImageRejected(Exception):
    """The file is not an image we accept. ``code`` and ``message`` say why."""

    def __init__(self, code: str, message):
        self.code = code
        self.message = message
        super().__init__(str(message))


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name the magic bytes announce, if it is one we accept."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == _PNG_MAGIC:
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def png_trailing_bytes(data: bytes) -> int:
    """How many bytes follow the PNG's IEND chunk (0 for a clean file).

    Data after the end of a PNG is how PNG+HTML (or PNG+ZIP) polyglots are made; no camera
    writes it. A malformed chunk walk counts as everything after the broken chunk.
    """
    pos = len(_PNG_MAGIC)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return max(0, len(data) - pos)
    return 0


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    format: str  # Pillow's name: JPEG, PNG, WEBP, HEIF
    width: int  # as stored, before EXIF orientation
    height: int


def open_image(data: bytes, fmt: str) -> Image.Image:
    """Open (header only) with just the one decoder the magic bytes named.

    Pillow's own pixel limit follows settings, and its bomb warning becomes an error, so a
    header announcing a huge image is refused before any pixel is decoded.
    """
    max_pixels = settings.ANJU_PHOTO_MAX_PIXELS
    # Pillow's limit is a module global: ours applies to this open, the previous one is put
    # back (settings may differ per call, as in tests; the explicit check below decides).
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as error:
        # Over twice the limit: Pillow refuses before telling the size.
        raise ImageRejected("decompression_bomb", _bomb_message(None, max_pixels)) from error
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as error:
        raise ImageRejected(
            "corrupt",
            _("The file starts like a %(format)s image but cannot be read: %(error)s")
            % {"format": FORMAT_LABELS[fmt], "error": error},
        ) from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    width, height = im.size
    bomb_warned = any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)
    if bomb_warned or width * height > max_pixels:
        im.close()
        raise ImageRejected("decompression_bomb", _bomb_message(im.size, max_pixels))
    budget = settings.ANJU_PHOTO_MAX_DECODED_BYTES
    needed = decoded_bytes(width, height, im.mode)
    if needed > budget:
        im.close()
        raise ImageRejected(
            "decompression_bomb",
            _(
                "The image declares %(width)s × %(height)s pixels (%(mode)s); decoding it would "
                "take %(needed_mb)s MB of memory, more than the limit of %(limit_mb)s MB; it is "
                "refused as a possible decompression bomb."
            )
            % {
                "width": width,
                "height": height,
                "mode": im.mode,
                "needed_mb": f"{needed / 1_000_000:,.0f}",
                "limit_mb": f"{budget / 1_000_000:,.0f}",
            },
        )
    return im


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Memory (bytes) one decoded copy of the image takes: width × height × bands × bytes per
    band, read from the header's size and mode before any pixel is decoded.

    At least three bands: every photo is turned into an RGB copy (a grayscale or palette
    image costs that much as soon as it is converted). The whole declared size counts, also
    for JPEG: libjpeg keeps a progressive file's coefficients for the whole image whatever
    scale ``draft`` asks for.
    """
    try:
        described = ImageMode.getmode(mode)
        bands, band_bytes = len(described.bands), max(1, int(described.typestr[-1]))
    except KeyError:
        bands, band_bytes = 4, 1  # a mode Pillow does not describe: count it as RGBA
    return width * height * max(bands, 3) * band_bytes


def _bomb_message(size, max_pixels):
    if size is None:
        return _(
            "The image declares more than %(limit)s pixels; it is refused as a possible "
            "decompression bomb."
        ) % {"limit": f"{max_pixels:,}"}
    return _(
        "The image declares %(width)s × %(height)s = %(pixels)s pixels, more than the limit "
        "of %(limit)s; it is refused as a possible decompression bomb."
    ) % {
        "width": size[0],
        "height": size[1],
        "pixels": f"{size[0] * size[1]:,}",
        "limit": f"{max_pixels:,}",
    }


def check_image(data: bytes, *, decode: bool = True) -> CheckedImage:
    """Accept only a JPEG, PNG, WebP or HEIC/HEIF within the limits; raise ImageRejected
    otherwise.

    Format by content, the PNG's end, the header's pixel count and decoded-memory budget are
    always checked (cheap: no pixel is decoded). ``decode`` also decodes the image, so that a
    damaged one is refused here: JPEG at 1/8 scale (libjpeg still reads every coded block, so
    a truncated or broken stream fails). The upload skips it when a worker decodes the photo
    anyway (a broker is configured): a damaged image then ends as a failed photo.
    """
    if not data:
        raise ImageRejected("empty", _("The file is empty."))
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(
            "unsupported_format",
            _(
                "The file is not a JPEG, PNG, WebP or HEIC/HEIF image (judged by its content, "
                "not its name)."
            ),
        )
    if fmt == "PNG":
        extra = png_trailing_bytes(data)
        if extra:
            raise ImageRejected(
                "corrupt",
                _(
                    "The PNG file has %(count)s bytes of other data after the end of the image; "
                    "it is refused because it may hide other content."
                )
                % {"count": f"{extra:,}"},
            )
    im = open_image(data, fmt)
    width, height = im.size
    if not decode:
        im.close()
        return CheckedImage(format=fmt, width=width, height=height)
    try:
        if fmt == "JPEG":
            im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        im.load()
    except Image.DecompressionBombError as error:
        raise ImageRejected(
            "decompression_bomb", _bomb_message(None, settings.ANJU_PHOTO_MAX_PIXELS)
        ) from error
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as error:
        raise ImageRejected(
            "corrupt",
            _("The %(format)s image is damaged and cannot be decoded: %(error)s")
            % {"format": FORMAT_LABELS[fmt], "error": error},
        ) from error
    finally:
        im.close()
    return CheckedImage(format=fmt, width=width, height=height)


# --- EXIF --------------------------------------------------------------------------------


@dataclasses.dataclass
class ExifData:
    taken_at: datetime.datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    make: str = ""
    model: str = ""
    orientation: int = 1


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip() if value is not None else ""


def _number(value) -> float | None:
    """An EXIF rational (IFDRational, (num, den) pair or number) as a float; None if invalid."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            num, den = value
            return None if not den else float(num) / float(den)
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return None if number != number else number  # NaN from a 0 denominator


def dms_to_degrees(dms, ref) -> float | None:
    """Degrees, minutes, seconds (three rationals) and a hemisphere ref to signed degrees."""
    try:
        parts = [_number(part) for part in dms]
    except TypeError:
        return None
    if len(parts) != 3 or any(part is None for part in parts):
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    return -degrees if _text(ref).upper() in ("S", "W") else degrees


def parse_exif_time(value, offset=None) -> datetime.datetime | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" with its "+08:00" offset, or else in settings.TIME_ZONE.

    A year before 1900 or after 2999 is taken for no time at all (the photo is then flagged
    for it): such a value is a camera's reset clock or a forgery, and at the ends of the
    calendar (0001 east of UTC, 9999 west of it) it cannot even be stored in UTC.
    """
    text = _text(value)
    try:
        naive = datetime.datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not 1900 <= naive.year <= 2999:
        return None
    offset_text = _text(offset)
    if len(offset_text) == 6 and offset_text[0] in "+-" and offset_text[3] == ":":
        try:
            hours, minutes = int(offset_text[1:3]), int(offset_text[4:6])
        except ValueError:
            hours = minutes = None
        if hours is not None and hours <= 14 and minutes < 60:
            sign = -1 if offset_text[0] == "-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
            return naive.replace(tzinfo=zone)
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def read_exif(im: Image.Image) -> ExifData:
    """Capture time, GPS position and accuracy, device and orientation, as far as present."""
    result = ExifData()
    try:
        exif = im.getexif()
    except (OSError, SyntaxError, ValueError, struct.error):
        return result
    if not exif:
        return result
    result.make = _text(exif.get(_TAG_MAKE))[:100]
    result.model = _text(exif.get(_TAG_MODEL))[:100]
    orientation = exif.get(_TAG_ORIENTATION)
    result.orientation = orientation if orientation in range(1, 9) else 1

    try:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except (OSError, SyntaxError, ValueError, struct.error, KeyError):
        ifd = {}
    # DateTimeOriginal is when the shutter fired; IFD0 DateTime changes when an app edits the
    # file, so it is not evidence of when the picture was taken.
    result.taken_at = parse_exif_time(
        ifd.get(_TAG_DATETIME_ORIGINAL), ifd.get(_TAG_OFFSET_TIME_ORIGINAL)
    ) or parse_exif_time(ifd.get(_TAG_DATETIME_DIGITIZED), ifd.get(_TAG_OFFSET_TIME_DIGITIZED))

    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except (OSError, SyntaxError, ValueError, struct.error, KeyError):
        gps = {}
    if gps:
        lat = dms_to_degrees(gps.get(_GPS_LAT) or (), gps.get(_GPS_LAT_REF))
        lon = dms_to_degrees(gps.get(_GPS_LON) or (), gps.get(_GPS_LON_REF))
        # 0/0 is what some cameras write without a fix; out-of-range is a broken tag.
        if (
            lat is not None
            and lon is not None
            and -90 <= lat <= 90
            and -180 <= lon <= 180
            and (lat, lon) != (0.0, 0.0)
        ):
            result.latitude, result.longitude = lat, lon
            accuracy = _number(gps.get(_GPS_H_POSITIONING_ERROR))
            if accuracy is not None and accuracy >= 0:
                result.accuracy_m = accuracy
    return result


# --- published copies ----------------------------------------------------------------------


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size after EXIF orientation: orientations 5–8 swap width and height."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _to_srgb(im: Image.Image) -> Image.Image:
    """RGB pixels in sRGB, so that the copy can go out without the camera's ICC profile.

    Phones tag photos with Display P3 or similar; converting once here keeps the colours
    right in a copy that carries no profile (a profile is metadata, with text in it).
    """
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # an unusable profile: the pixels are taken as they are
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode.startswith("I"):
        # 16-bit PNG: keep the top 8 bits.
        pixels = np.asarray(im).astype(np.uint32) >> 8
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _jpeg_bytes(im: Image.Image) -> bytes:
    # A fresh info dict: Pillow would otherwise carry the source's JPEG comment (and in some
    # versions other metadata) into the saved copy. Nothing but pixels is published.
    im.info = {}
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return buffer.getvalue()


def display_copy(im: Image.Image) -> Image.Image:
    """The display copy's pixels: ``im`` shrunk in place to DISPLAY_SIZE on its long side.

    BICUBIC rather than LANCZOS: after the DCT-scaled decode the step left is small (a 12 MP
    photo is decoded at 2000 px, 1.25 times the display size), and there the two filters
    differ by less than the JPEG encoding of the copy changes it (bench/bench_photos.py
    prints the figures: PSNR 55+ dB against LANCZOS on a photo-like picture, where the
    JPEG at quality 85 is about 46 dB), for a third less time. The thumbnail and the pHash
    keep their own LANCZOS steps.
    """
    im.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE), DISPLAY_RESAMPLE)
    return im


@dataclasses.dataclass
class Derivatives:
    display: bytes
    thumbnail: bytes
    width: int  # of the original, after orientation
    height: int
    phash: int  # unsigned 64-bit
    exif: ExifData


def make_derivatives(data: bytes, fmt: str) -> Derivatives:
    """Read EXIF, then decode at reduced size, orient, make both JPEG copies and the pHash.

    For JPEG, ``draft`` asks libjpeg for a DCT-scaled decode (1/2, 1/4 or 1/8) no smaller
    than the display copy: a 12 MP photo is decoded as 3 MP or less, which is where most of
    the time goes. ``draft`` works in stored (pre-orientation) coordinates, so the target
    keeps the stored aspect ratio.
    """
    im = open_image(data, fmt)
    exif = read_exif(im)
    width, height = oriented_size(*im.size, exif.orientation)
    if fmt == "JPEG":
        scale = min(1.0, DISPLAY_SIZE / max(im.size))
        im.draft("RGB", (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))))
    im = ImageOps.exif_transpose(im)
    display = display_copy(_to_srgb(im))
    thumb = display.copy()
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    return Derivatives(
        display=_jpeg_bytes(display),
        thumbnail=_jpeg_bytes(thumb),
        width=width,
        height=height,
        phash=phash(thumb),  # 320 px is plenty for a 32×32 hash, and cheap
        exif=exif,
    )


# --- perceptual hash -----------------------------------------------------------------------

_HASH_SIZE = 8
_DCT_SIZE = 32


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: C @ x is the DCT of the column vector x."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0, :] = np.sqrt(1 / n)
    return matrix


_DCT = _dct_matrix(_DCT_SIZE)


def phash(im: Image.Image) -> int:
    """64-bit DCT perceptual hash, as an unsigned int.

    32×32 grayscale, 2-D DCT (C · X · Cᵀ), the 8×8 lowest frequencies; a bit is 1 where the
    coefficient is above the median of the 63 AC coefficients (the DC term, the mean
    brightness, would skew the median). Bit 63 is the top-left coefficient, row by row.
    Robust to re-encoding, scaling, small crops and brightness changes; different scenes
    land about 32 bits apart.
    """
    small = im.convert("L").resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    coefficients = (_DCT @ pixels @ _DCT.T)[:_HASH_SIZE, :_HASH_SIZE].flatten()
    median = np.median(coefficients[1:])
    value = 0
    for bit in coefficients > median:
        value = (value << 1) | int(bit)
    return value


_MASK64 = (1 << 64) - 1


def to_signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed value a BIGINT column holds."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    return value & _MASK64


# The widths of the hash's bands for the near-duplicate index, top bits first. Three bands:
# two hashes within 8 bits share a band within 2 (pigeonhole), and a 21-bit band probed with
# its 232 neighbours within 2 bits reads about 110 index entries per band at a million photos
# (four 16-bit bands read about 2,100 each: 8,400 in all, twice the time).
HASH_BAND_BITS = (21, 21, 22)


def hash_bands(value: int) -> tuple[int, ...]:
    """The hash cut into bands of HASH_BAND_BITS (band 0 = the top 21 bits)."""
    value = to_unsigned64(value)
    bands, shift = [], 64
    for width in HASH_BAND_BITS:
        shift -= width
        bands.append((value >> shift) & ((1 << width) - 1))
    return tuple(bands)


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes, signed or unsigned."""
    return ((a ^ b) & _MASK64).bit_count()
