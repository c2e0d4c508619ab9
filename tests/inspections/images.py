"""Real image files for tests, made with Pillow (and pillow-heif for HEIC).

Every helper returns bytes: what a phone would upload.
"""

import datetime
import io
import random
import struct
import zlib

import pillow_heif
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

pillow_heif.register_heif_opener()

IFD_EXIF = 0x8769
IFD_GPS = 0x8825


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Degrees as EXIF DMS rationals (seconds to 1/1000)."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 1000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 1000)


def make_exif(
    *,
    taken_at: datetime.datetime | str | None = None,
    offset: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    accuracy: float | None = None,
    make: str | None = "Huawei",
    model: str | None = "P40",
    orientation: int | None = None,
    comment: str | None = None,
) -> Image.Exif:
    """An EXIF block. ``taken_at``: an aware datetime (written as local time + offset) or text.

    GPS is written as a phone does: unsigned DMS rationals with N/S and E/W references.
    """
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if orientation:
        exif[0x0112] = orientation
    if comment:
        exif[0x010E] = comment  # ImageDescription
    if taken_at is not None:
        ifd = exif.get_ifd(IFD_EXIF)
        if isinstance(taken_at, datetime.datetime):
            if offset is None and taken_at.utcoffset() is not None:
                total = int(taken_at.utcoffset().total_seconds() // 60)
                sign = "-" if total < 0 else "+"
                offset = f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"
            taken_at = taken_at.strftime("%Y:%m:%d %H:%M:%S")
        ifd[0x9003] = taken_at
        if offset:
            ifd[0x9011] = offset
    if lat is not None and lon is not None:
        gps = exif.get_ifd(IFD_GPS)
        gps[0] = b"\x02\x02\x00\x00"
        gps[1] = "S" if lat < 0 else "N"
        gps[2] = _dms(lat)
        gps[3] = "W" if lon < 0 else "E"
        gps[4] = _dms(lon)
        if accuracy is not None:
            gps[31] = IFDRational(round(accuracy * 100), 100)
    return exif


def house_picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A house-like scene that differs with the seed: sky, hills, walls, roof, door, trees."""
    rng = random.Random(seed)
    width, height = size
    im = Image.new("RGB", size)
    draw = ImageDraw.Draw(im)
    horizon = int(height * rng.uniform(0.35, 0.65))
    sky = [rng.randint(120, 200), rng.randint(150, 220), rng.randint(200, 255)]
    for y in range(horizon):
        shade = y / max(1, horizon)
        draw.line([(0, y), (width, y)], fill=tuple(int(c * (1 - 0.3 * shade)) for c in sky))
    ground = (rng.randint(60, 140), rng.randint(90, 160), rng.randint(30, 80))
    draw.rectangle([0, horizon, width, height], fill=ground)
    for _hill in range(rng.randint(1, 3)):
        cx, r = rng.randint(0, width), rng.randint(width // 6, width // 2)
        shade = tuple(max(0, c - rng.randint(10, 50)) for c in ground)
        draw.ellipse([cx - r, horizon - r // 3, cx + r, horizon + r // 3], fill=shade)
    house_w = int(width * rng.uniform(0.3, 0.6))
    house_h = int(height * rng.uniform(0.2, 0.35))
    x0 = rng.randint(0, width - house_w)
    y1 = min(height - 5, horizon + int(height * rng.uniform(0.05, 0.25)))
    y0 = y1 - house_h
    wall = (rng.randint(150, 240), rng.randint(120, 210), rng.randint(90, 180))
    draw.rectangle([x0, y0, x0 + house_w, y1], fill=wall, outline=(40, 30, 20), width=3)
    roof_h = int(house_h * rng.uniform(0.4, 0.9))
    roof = (rng.randint(20, 120), rng.randint(20, 80), rng.randint(20, 80))
    overhang = rng.randint(5, 30)
    draw.polygon(
        [(x0 - overhang, y0), (x0 + house_w // 2, y0 - roof_h), (x0 + house_w + overhang, y0)],
        fill=roof,
    )
    door_w = house_w // rng.randint(5, 8)
    door_x = x0 + rng.randint(door_w, house_w - 2 * door_w)
    draw.rectangle([door_x, y1 - house_h * 0.6, door_x + door_w, y1], fill=(70, 40, 20))
    for _window in range(rng.randint(1, 4)):
        wx = x0 + rng.randint(5, max(6, house_w - 40))
        wy = y0 + rng.randint(5, max(6, house_h // 2))
        draw.rectangle([wx, wy, wx + 30, wy + 25], fill=(40, 60, 90), outline=(250, 250, 250))
    for _tree in range(rng.randint(1, 5)):
        tx = rng.randint(0, width)
        ty = horizon + rng.randint(-20, 60)
        tr = rng.randint(20, 70)
        draw.rectangle([tx - 5, ty, tx + 5, ty + tr], fill=(80, 50, 20))
        draw.ellipse([tx - tr, ty - 2 * tr, tx + tr, ty], fill=(20, rng.randint(80, 140), 30))
    return im


def jpeg(
    im: Image.Image | None = None,
    *,
    exif: Image.Exif | None = None,
    quality: int = 90,
    seed: int = 1,
    comment: bytes | None = None,
    icc_profile: bytes | None = None,
) -> bytes:
    im = im if im is not None else house_picture(seed)
    buffer = io.BytesIO()
    kwargs = {"quality": quality}
    if exif is not None:
        kwargs["exif"] = exif
    if comment is not None:
        kwargs["comment"] = comment
    if icc_profile is not None:
        kwargs["icc_profile"] = icc_profile
    im.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def png(im: Image.Image | None = None, *, seed: int = 1, text: dict | None = None) -> bytes:
    from PIL import PngImagePlugin

    im = im if im is not None else house_picture(seed)
    buffer = io.BytesIO()
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    im.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def webp(im: Image.Image | None = None, *, seed: int = 1, exif: Image.Exif | None = None) -> bytes:
    im = im if im is not None else house_picture(seed)
    buffer = io.BytesIO()
    kwargs = {"quality": 85}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    im.save(buffer, "WEBP", **kwargs)
    return buffer.getvalue()


def heic(im: Image.Image | None = None, *, seed: int = 1, exif: Image.Exif | None = None) -> bytes:
    im = im if im is not None else house_picture(seed)
    buffer = io.BytesIO()
    kwargs = {"quality": 80}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    im.save(buffer, "HEIF", **kwargs)
    return buffer.getvalue()


def corrupt_jpeg(seed: int = 1) -> bytes:
    """A JPEG cut off halfway through its coded data (an interrupted transfer)."""
    data = jpeg(seed=seed)
    return data[: len(data) // 2]


POLYGLOT_HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def png_html_polyglot(seed: int = 1) -> bytes:
    """A valid PNG with an HTML page after its end: opens as an image and as a web page."""
    return png(seed=seed) + POLYGLOT_HTML


def png_with_html_text(seed: int = 1) -> bytes:
    """A valid PNG carrying an HTML page in a tEXt chunk (inside the file, not after it)."""
    return png(seed=seed, text={"Comment": POLYGLOT_HTML.decode()})


def html_page() -> bytes:
    """Not an image at all, whatever name or content type it is sent with."""
    return b"<!DOCTYPE html>" + POLYGLOT_HTML


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header claims width × height pixels (900 MP by default).

    The IDAT holds a few compressed rows of zeros: decoding it would have to allocate the
    whole declared image first.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def noisy_jpeg(min_bytes: int, seed: int = 1) -> bytes:
    """A real JPEG of at least ``min_bytes`` (noise does not compress)."""
    rng = random.Random(seed)
    side = 256
    while True:
        im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        data = jpeg(im, quality=95)
        if len(data) >= min_bytes:
            return data
        side *= 2


def reencoded_crop(data: bytes, *, crop: float = 0.02, quality: int = 60) -> bytes:
    """Another JPEG of the same picture: ``crop`` of each side cut off (4 % of the width and
    of the height by default), re-encoded at another quality."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    dx, dy = int(im.width * crop), int(im.height * crop)
    return jpeg(im.crop((dx, dy, im.width - dx, im.height - dy)), quality=quality)


def two_colour_landscape(size: tuple[int, int] = (400, 200)) -> Image.Image:
    """Left half red, right half blue: after orientation 6 the red half is on top."""
    im = Image.new("RGB", size, (0, 0, 255))
    ImageDraw.Draw(im).rectangle([0, 0, size[0] // 2 - 1, size[1]], fill=(255, 0, 0))
    return im
