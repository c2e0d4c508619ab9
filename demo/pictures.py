"""Pictures for the demo's photo evidence: house-like scenes drawn with Pillow, saved as a
phone saves them (JPEG with EXIF time, GPS as DMS rationals, make and model).

Each scene is built from large shapes placed anew for every photo (horizon, hills, the house,
foreground), so that the perceptual hashes of different households' photos stay far apart
and only the planted copies look alike.
"""

import datetime
import io
import math
import random
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from PIL import ExifTags, Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

from inspections.models import PhotoAngle, PhotoStage

IMAGE_SIZE = (800, 600)
JPEG_QUALITY = 82
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")  # the demo county is in Guizhou


# --- drawing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseLook:
    """A household's house as the pictures show it, drawn once from the household's RNG."""

    wall: tuple
    new_wall: tuple
    roof: tuple
    new_roof: tuple
    sky: tuple
    ground: tuple
    hill: tuple
    storeys: int
    width: float  # of the frame
    height: float  # of the frame, per storey
    roof_pitch: float
    windows: int
    door_at: float  # along the front, 0..1
    trees: int


def _jitter(rnd: random.Random, colour: tuple, amount: int) -> tuple:
    return tuple(max(0, min(255, c + rnd.randint(-amount, amount))) for c in colour)


def house_look(rnd: random.Random, storeys: int) -> HouseLook:
    earth = rnd.choice([(176, 132, 92), (150, 111, 80), (189, 160, 120), (128, 96, 72)])
    return HouseLook(
        wall=_jitter(rnd, earth, 25),
        new_wall=_jitter(rnd, rnd.choice([(236, 232, 222), (214, 214, 210), (240, 226, 200)]), 12),
        roof=_jitter(rnd, rnd.choice([(70, 70, 76), (92, 84, 80), (54, 60, 66)]), 15),
        new_roof=_jitter(rnd, rnd.choice([(168, 58, 44), (60, 92, 150), (90, 96, 104)]), 20),
        sky=_jitter(rnd, rnd.choice([(150, 190, 230), (200, 210, 220), (120, 170, 225)]), 20),
        ground=_jitter(rnd, rnd.choice([(96, 130, 70), (120, 110, 80), (80, 110, 60)]), 20),
        hill=_jitter(rnd, rnd.choice([(60, 100, 70), (80, 110, 90), (50, 80, 60)]), 20),
        storeys=max(1, min(3, storeys)),
        width=rnd.uniform(0.4, 0.72),
        height=rnd.uniform(0.16, 0.24),
        roof_pitch=rnd.uniform(0.08, 0.2),
        windows=rnd.randint(1, 4),
        door_at=rnd.uniform(0.2, 0.8),
        trees=rnd.randint(0, 4),
    )


def _landscape(draw, rnd, look, w, h, horizon):
    """Sky, hills and ground: the large shapes that make each picture's coarse structure."""
    for y in range(0, horizon, 6):  # a sky gradient in bands (cheap)
        shade = 1.0 - 0.35 * y / max(1, horizon)
        draw.rectangle(
            [0, y, w, y + 6], fill=tuple(int(c * shade + 60 * (1 - shade)) for c in look.sky)
        )
    peaks = [(0, horizon)]
    x = 0
    while x < w:
        x += rnd.randint(60, 220)
        peaks.append((x, horizon - rnd.randint(20, int(h * 0.35))))
    peaks += [(w, horizon), (0, horizon)]
    draw.polygon(peaks, fill=look.hill)
    draw.rectangle([0, horizon, w, h], fill=look.ground)
    for _i in range(rnd.randint(10, 40)):  # grass and stones
        gx, gy = rnd.randint(0, w), rnd.randint(horizon, h)
        draw.ellipse(
            [gx, gy, gx + rnd.randint(4, 30), gy + rnd.randint(2, 10)],
            fill=_jitter(rnd, look.ground, 30),
        )


def _tree(draw, rnd, x, base, size):
    draw.rectangle([x - size // 10, base - size // 2, x + size // 10, base], fill=(90, 64, 40))
    draw.ellipse(
        [x - size // 2, base - size * 3 // 2, x + size // 2, base - size // 3],
        fill=_jitter(rnd, (40, 100, 50), 25),
    )


def _cracks(draw, rnd, box, count):
    x0, y0, x1, y1 = box
    for _i in range(count):
        x, y = rnd.uniform(x0, x1), rnd.uniform(y0, y0 + (y1 - y0) / 2)
        points = [(x, y)]
        for _step in range(rnd.randint(3, 7)):
            x += rnd.uniform(-14, 14)
            y += rnd.uniform(6, 22)
            points.append((max(x0, min(x1, x)), min(y1, y)))
        draw.line(points, fill=(40, 30, 25), width=rnd.randint(2, 4))


def _building(draw, rnd, look, stage, box, *, door: bool, windows: int, gable: bool = False):
    """A wall with a roof, windows and perhaps a door; old and cracked before works."""
    x0, y0, x1, y1 = box
    new = stage == PhotoStage.AFTER
    wall = look.new_wall if new else look.wall
    roof = look.new_roof if new else look.roof
    draw.rectangle(box, fill=wall, outline=_jitter(rnd, wall, 40), width=2)
    pitch = (y1 - y0) * look.roof_pitch * 3
    overhang = (x1 - x0) * 0.06
    if gable:  # the side of the house: a triangle on top of the wall
        draw.polygon(
            [(x0 - overhang, y0), ((x0 + x1) / 2, y0 - pitch * 1.6), (x1 + overhang, y0)], fill=roof
        )
    else:
        draw.polygon(
            [
                (x0 - overhang, y0),
                (x0 + overhang, y0 - pitch),
                (x1 - overhang, y0 - pitch),
                (x1 + overhang, y0),
            ],
            fill=roof,
        )
        for k in range(1, 6):  # rows of tiles
            ty = y0 - pitch * k / 6
            draw.line([(x0, ty), (x1, ty)], fill=_jitter(rnd, roof, 25), width=1)
    floor_h = (y1 - y0) / look.storeys
    for storey in range(look.storeys):
        top = y0 + storey * floor_h
        for i in range(windows):
            wx = x0 + (x1 - x0) * (i + 0.5) / (windows + 0.5)
            ww, wh = (x1 - x0) * 0.08, floor_h * 0.3
            fill = (70, 110, 140) if new else (40, 40, 45)
            draw.rectangle(
                [wx, top + floor_h * 0.2, wx + ww, top + floor_h * 0.2 + wh],
                fill=fill,
                outline=(220, 220, 220) if new else (90, 70, 50),
                width=2,
            )
    if door:
        dx = x0 + (x1 - x0) * look.door_at
        dw = (x1 - x0) * 0.1
        draw.rectangle(
            [dx - dw / 2, y1 - floor_h * 0.65, dx + dw / 2, y1],
            fill=(120, 40, 30) if new else (70, 50, 35),
        )
    if stage == PhotoStage.BEFORE:
        _cracks(draw, rnd, box, rnd.randint(1, 4))
        for _i in range(rnd.randint(1, 3)):  # damp stains
            sx, sy = rnd.uniform(x0, x1 - 30), rnd.uniform(y0, y1 - 20)
            draw.ellipse(
                [sx, sy, sx + rnd.uniform(20, 60), sy + rnd.uniform(10, 40)],
                fill=_jitter(rnd, wall, 45),
            )
    elif stage == PhotoStage.DURING:
        for px in range(int(x0 - 10), int(x1 + 20), 38):  # scaffolding
            draw.line([(px, y0 - pitch), (px, y1)], fill=(160, 130, 60), width=3)
        for py in range(int(y0 - pitch), int(y1), 34):
            draw.line([(x0 - 10, py), (x1 + 10, py)], fill=(160, 130, 60), width=2)
        for _i in range(rnd.randint(2, 5)):  # piles of bricks
            bx = rnd.uniform(0, x1)
            draw.rectangle(
                [bx, y1 + 4, bx + rnd.uniform(20, 60), y1 + rnd.uniform(14, 30)], fill=(170, 80, 60)
            )


def _interior(draw, rnd, look, stage, w, h):
    """A room seen from its doorway: back wall, side walls, floor, a window and furniture."""
    wall = look.new_wall if stage == PhotoStage.AFTER else _jitter(rnd, look.wall, 10)
    # The back wall's rectangle: where it stands and how big it is sets the whole layout.
    vx, vy = w * rnd.uniform(0.2, 0.8), h * rnd.uniform(0.3, 0.6)
    bw, bh = w * rnd.uniform(0.18, 0.4), h * rnd.uniform(0.18, 0.35)
    back = (vx - bw, vy - bh, vx + bw, vy + bh)
    draw.rectangle([0, 0, w, h], fill=_jitter(rnd, wall, 30))  # the ceiling
    draw.polygon([(0, 0), back[:2], (back[0], back[3]), (0, h)], fill=_jitter(rnd, wall, 45))
    draw.polygon([(w, 0), (back[2], back[1]), back[2:], (w, h)], fill=_jitter(rnd, wall, 45))
    floor = _jitter(rnd, (110, 90, 70) if stage != PhotoStage.AFTER else (180, 170, 160), 30)
    draw.polygon([(0, h), (back[0], back[3]), back[2:], (w, h)], fill=floor)
    draw.rectangle(back, fill=wall)
    for k in range(rnd.randint(1, 3)):  # beams across the ceiling
        by = back[1] * (k + 1) / 4
        draw.rectangle([0, by, w, by + rnd.uniform(8, 20)], fill=(90, 60, 40))
    # A bright window on the back wall or a side wall: the strongest shape in the picture.
    if rnd.random() < 0.5:
        wx = rnd.uniform(back[0], back[2] - bw * 0.6)
        box = [wx, back[1] + bh * 0.2, wx + bw * rnd.uniform(0.4, 0.7), back[1] + bh * 0.9]
    else:
        wx = rnd.choice([rnd.uniform(0, back[0] * 0.5), rnd.uniform(back[2], w - 80)])
        box = [
            wx,
            h * rnd.uniform(0.15, 0.3),
            wx + rnd.uniform(50, 110),
            h * rnd.uniform(0.45, 0.6),
        ]
    draw.rectangle(box, fill=(240, 244, 248), outline=(80, 60, 40), width=5)
    for _i in range(rnd.randint(1, 3)):  # a table, a cupboard, a bed
        fx, fy = rnd.uniform(0, w - 120), rnd.uniform(vy, h - 60)
        draw.rectangle(
            [fx, fy, fx + rnd.uniform(60, 240), fy + rnd.uniform(30, 140)],
            fill=_jitter(rnd, rnd.choice([(120, 70, 40), (60, 50, 45), (150, 120, 90)]), 25),
        )
    if rnd.random() < 0.6:  # a dark doorway to the next room
        dx = rnd.choice([rnd.uniform(0, back[0] - 60), rnd.uniform(back[2], w - 60)])
        draw.rectangle(
            [dx, h * rnd.uniform(0.2, 0.35), dx + rnd.uniform(60, 120), h], fill=(35, 30, 28)
        )
    if stage == PhotoStage.BEFORE:
        _cracks(draw, rnd, back, rnd.randint(1, 3))


def _wall_detail(draw, rnd, look, stage, w, h):
    """A close-up of a load-bearing wall: courses of brick or earth, a beam, an opening, and
    the damage or the repair. The big shapes are placed anew for each photo."""
    wall = look.new_wall if stage == PhotoStage.AFTER else look.wall
    draw.rectangle([0, 0, w, h], fill=wall)
    course = rnd.randint(26, 48)
    brick = int(course * rnd.uniform(1.8, 2.6))
    for row, y in enumerate(range(0, h, course)):
        draw.line([(0, y), (w, y)], fill=_jitter(rnd, wall, 50), width=3)
        offset = (row % 2) * brick // 2
        for x in range(-offset, w, brick):
            draw.line([(x, y), (x, y + course)], fill=_jitter(rnd, wall, 50), width=2)
    beam = (100, 70, 45) if stage != PhotoStage.AFTER else (170, 170, 165)
    if rnd.random() < 0.5:  # a beam across, or a column up
        y = rnd.uniform(0, 0.7) * h
        draw.rectangle([0, y, w, y + rnd.uniform(30, 90)], fill=beam)
    else:
        x = rnd.uniform(0, 0.8) * w
        draw.rectangle([x, 0, x + rnd.uniform(40, 110), h], fill=beam)
    for _i in range(rnd.randint(1, 3)):  # an opening, a shadow, a patch of render
        x, y = rnd.uniform(-100, w - 50), rnd.uniform(-100, h - 50)
        size = (rnd.uniform(80, 380), rnd.uniform(80, 380))
        fill = rnd.choice([(30, 28, 26), tuple(int(c * 0.6) for c in wall), (200, 200, 195)])
        draw.rectangle([x, y, x + size[0], y + size[1]], fill=fill)
    if stage == PhotoStage.BEFORE:
        _cracks(draw, rnd, (0, 0, w, h), rnd.randint(3, 6))
    elif stage == PhotoStage.DURING:
        x, y = rnd.uniform(0, w * 0.6), rnd.uniform(0, h * 0.6)
        draw.rectangle(
            [x, y, x + rnd.uniform(120, 360), y + rnd.uniform(120, 300)], fill=(180, 180, 175)
        )  # fresh mortar


def _person_with_doorplate(draw, rnd, x, base, scale):
    draw.ellipse(
        [x - 14 * scale, base - 120 * scale, x + 14 * scale, base - 92 * scale],
        fill=(225, 190, 160),
    )
    draw.rectangle(
        [x - 22 * scale, base - 92 * scale, x + 22 * scale, base - 40 * scale],
        fill=_jitter(rnd, (60, 70, 110), 40),
    )
    draw.rectangle([x - 18 * scale, base - 40 * scale, x + 18 * scale, base], fill=(50, 50, 55))


def _foreground(draw, rnd, look, w, h, horizon):
    """What stands between the camera and the house: a shadow, a fence, a haystack, a tree."""
    for _i in range(rnd.randint(1, 3)):
        kind = rnd.randrange(4)
        x, y = rnd.uniform(-100, w), rnd.uniform(horizon, h)
        size = rnd.uniform(120, 360)
        if kind == 0:  # the shadow of something out of the frame
            draw.polygon(
                [
                    (x, y),
                    (x + size, y + rnd.uniform(-60, 60)),
                    (x + size * 1.4, h),
                    (x - size * 0.3, h),
                ],
                fill=tuple(int(c * 0.55) for c in look.ground),
            )
        elif kind == 1:  # a fence or a low wall
            top = y - rnd.uniform(30, 90)
            draw.rectangle([x, top, x + size * 1.5, y], fill=_jitter(rnd, (150, 140, 125), 40))
        elif kind == 2:  # a haystack or a pile of firewood
            draw.ellipse(
                [x, y - size * 0.6, x + size, y + size * 0.2], fill=_jitter(rnd, (190, 160, 90), 35)
            )
        else:
            _tree(draw, rnd, x, y + size * 0.3, int(size))


def _roof(draw, rnd, look, stage, w, h, horizon):
    """The roof seen from the slope above: its ridge and eaves cross the frame at an angle."""
    roof = look.new_roof if stage == PhotoStage.AFTER else look.roof
    ridge = (h * rnd.uniform(0.15, 0.5), h * rnd.uniform(0.15, 0.5))
    eaves = (h * rnd.uniform(0.75, 1.0), h * rnd.uniform(0.75, 1.0))
    left, right = w * rnd.uniform(-0.1, 0.3), w * rnd.uniform(0.7, 1.1)
    draw.polygon(
        [(left, ridge[0]), (right, ridge[1]), (right, eaves[1]), (left, eaves[0])], fill=roof
    )
    rows = rnd.randint(6, 16)
    for k in range(1, rows):
        t = k / rows
        y0 = ridge[0] + (eaves[0] - ridge[0]) * t
        y1 = ridge[1] + (eaves[1] - ridge[1]) * t
        draw.line([(left, y0), (right, y1)], fill=_jitter(rnd, roof, 35), width=3)
    draw.line([(left, ridge[0]), (right, ridge[1])], fill=_jitter(rnd, roof, 60), width=10)
    if rnd.random() < 0.6:  # a chimney
        cx = rnd.uniform(left + 40, right - 80)
        cy = ridge[0] + (ridge[1] - ridge[0]) * (cx - left) / max(1, right - left)
        draw.rectangle([cx, cy - rnd.uniform(40, 90), cx + 36, cy + 10], fill=(120, 110, 100))
    for _i in range(rnd.randint(0, 3)):  # a neighbour's roof or a tree in a corner
        corner = rnd.choice([(0, h), (w, h), (0, horizon), (w, horizon)])
        size = rnd.uniform(80, 220)
        draw.ellipse(
            [corner[0] - size, corner[1] - size, corner[0] + size, corner[1] + size],
            fill=_jitter(rnd, rnd.choice([look.hill, (150, 60, 50), (70, 70, 76)]), 25),
        )
    if stage == PhotoStage.BEFORE:
        for _i in range(rnd.randint(2, 6)):  # missing tiles
            mx, my = rnd.uniform(max(0, left), min(w, right) - 60), rnd.uniform(h * 0.5, h - 40)
            draw.rectangle(
                [mx, my, mx + rnd.uniform(30, 90), my + rnd.uniform(15, 40)], fill=(30, 25, 20)
            )


def draw_photo(
    *, rnd: random.Random, look: HouseLook, stage: str, angle: str, doorplate: str
) -> Image.Image:
    """One picture of the house from an angle, at a stage of the works."""
    w, h = IMAGE_SIZE
    image = Image.new("RGB", IMAGE_SIZE, look.sky)
    draw = ImageDraw.Draw(image)
    if angle == PhotoAngle.INTERIOR:
        _interior(draw, rnd, look, stage, w, h)
        return image
    if angle == PhotoAngle.STRUCTURE:
        _wall_detail(draw, rnd, look, stage, w, h)
        return image
    horizon = int(h * rnd.uniform(0.25, 0.7))
    if angle == PhotoAngle.ROOF:
        horizon = int(h * rnd.uniform(0.12, 0.25))
    _landscape(draw, rnd, look, w, h, horizon)
    # Where the house stands in the frame, and how big: each photo is framed anew.
    width = look.width * (0.55 if angle in (PhotoAngle.LEFT, PhotoAngle.RIGHT) else 1.0)
    if stage == PhotoStage.AFTER:
        width *= rnd.uniform(0.8, 1.15)
    if angle == PhotoAngle.HOUSEHOLDER:
        width *= 0.8
    house_w = w * min(0.85, width)
    house_h = h * look.height * look.storeys * rnd.uniform(0.9, 1.2)
    centre = w * rnd.uniform(0.3, 0.7)
    base = horizon + (h - horizon) * rnd.uniform(0.35, 0.7)
    box = (centre - house_w / 2, base - house_h, centre + house_w / 2, base)
    if angle == PhotoAngle.ROOF:
        _roof(draw, rnd, look, stage, w, h, horizon)
        _foreground(draw, rnd, look, w, h, horizon)
        return image
    _building(
        draw,
        rnd,
        look,
        stage,
        box,
        door=angle in (PhotoAngle.FRONT, PhotoAngle.HOUSEHOLDER),
        windows=look.windows
        if angle in (PhotoAngle.FRONT, PhotoAngle.BACK, PhotoAngle.HOUSEHOLDER)
        else 1,
        gable=angle in (PhotoAngle.LEFT, PhotoAngle.RIGHT),
    )
    _foreground(draw, rnd, look, w, h, horizon)
    for _i in range(look.trees if angle != PhotoAngle.HOUSEHOLDER else 1):
        tx = rnd.choice([rnd.uniform(0, box[0]), rnd.uniform(box[2], w)])
        _tree(draw, rnd, tx, base + rnd.uniform(-10, 30), int(rnd.uniform(50, 140)))
    if angle == PhotoAngle.HOUSEHOLDER:
        # The householder at the door, and the blue doorplate with the house number.
        dx = box[0] + (box[2] - box[0]) * look.door_at
        plate_x = min(box[2] - 70, dx + house_w * 0.08)
        draw.rectangle(
            [plate_x, base - house_h * 0.55, plate_x + 64, base - house_h * 0.55 + 26],
            fill=(30, 70, 160),
        )
        draw.text((plate_x + 6, base - house_h * 0.55 + 7), doorplate, fill=(255, 255, 255))
        _person_with_doorplate(draw, rnd, dx + house_w * 0.18, base + 40, rnd.uniform(1.3, 1.8))
    if angle == PhotoAngle.RIGHT:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


# --- EXIF ---------------------------------------------------------------------------------


def _dms(value: float) -> tuple:
    """Degrees as EXIF wants them: three rationals, degrees, minutes, seconds (1/10000)."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600 * 10000)
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000))


def jpeg_with_exif(
    image: Image.Image,
    *,
    taken_at: datetime.datetime | None,
    gps: tuple[float, float] | None,
    accuracy: float | None,
    camera: tuple[str, str],
) -> bytes:
    """The picture as a phone would save it: JPEG with make, model, time and GPS in EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = camera
    exif[ExifTags.Base.Orientation] = 1
    if taken_at is not None:
        local = taken_at.astimezone(ZONE)
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        ifd[ExifTags.Base.DateTimeOriginal] = local.strftime("%Y:%m:%d %H:%M:%S")
        ifd[ExifTags.Base.OffsetTimeOriginal] = (
            local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
        )
    if gps is not None:
        lon, lat = gps
        info = exif.get_ifd(ExifTags.IFD.GPSInfo)
        info[ExifTags.GPS.GPSVersionID] = b"\x02\x02\x00\x00"
        info[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        info[ExifTags.GPS.GPSLatitude] = _dms(lat)
        info[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        info[ExifTags.GPS.GPSLongitude] = _dms(lon)
        if accuracy is not None:
            info[ExifTags.GPS.GPSHPositioningError] = IFDRational(round(accuracy * 10), 10)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
    return buffer.getvalue()


def offset_point(lon: float, lat: float, *, metres: float, bearing: float) -> tuple[float, float]:
    """The point `metres` away on `bearing` (radians from north), on a local flat earth."""
    north, east = metres * math.cos(bearing), metres * math.sin(bearing)
    return (
        lon + east / (111_320.0 * math.cos(math.radians(lat))),
        lat + north / 110_574.0,
    )


def recropped(data: bytes, *, rnd: random.Random) -> Image.Image:
    """Another photo re-encoded after a slight crop: what "editing" a stolen photo gives.

    The crop is as large as it can be while the copy still looks the same to the pHash (at
    most half the flagging distance), so the planted near-duplicate is flagged whatever the
    picture.
    """
    from inspections import imaging

    limit = max(0, settings.ANJU_PHASH_MAX_DISTANCE // 2)
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        w, h = source.size
        reference = imaging.phash(source)
        shares = [rnd.uniform(0.5, 1.0) for _side in range(4)]
        for crop in (0.04, 0.03, 0.02, 0.01, 0.005, 0.0):
            left, top, right, bottom = (
                round(share * crop * size) for share, size in zip(shares, (w, h, w, h), strict=True)
            )
            copy = source.crop((left, top, w - right, h - bottom)).resize(
                IMAGE_SIZE, Image.Resampling.BILINEAR
            )
            if imaging.hamming(imaging.phash(copy), reference) <= limit:
                break
        return copy
