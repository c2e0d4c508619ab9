#!/usr/bin/env python
"""Benchmark: our photo processing of a 12 MP JPEG against a naive full-decode pipeline.

    .venv/bin/python bench/bench_photos.py [--repeat N] [--width 4000 --height 3000]

No database is used (DATABASE_URL may be anything). The bench draws a 4000×3000 house-like
picture, saves it as a phone would (JPEG quality 92, EXIF with time, GPS and orientation 6),
and times, best of N runs each:

  ours      inspections.imaging.make_derivatives: EXIF read, DCT-scaled decode with
            Image.draft (libjpeg decodes at 1/2 here, never the full 12 MP), orientation,
            display copy (1600 px) and thumbnail (320 px, made from the display copy),
            pHash, both JPEGs written without metadata;
  naive     open, full decode, ImageOps.exif_transpose, resize with LANCZOS from full size
            to 1600 px and to 320 px, save both as JPEG (no EXIF, no pHash: less work).

It also prints the synchronous upload check (inspections.imaging.check_image, a 1/8-scale
decode) and prints speedup = naive / ours.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="Runs per pipeline (best is kept).")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    return parser.parse_args()


def make_photo(width: int, height: int) -> bytes:
    """A 12 MP phone-like JPEG: stored landscape with orientation 6, EXIF time and GPS."""
    import datetime

    from PIL import ImageFilter

    from tests.inspections import images

    picture = images.house_picture(2026, size=(width, height))
    # Some fine texture, as a real photo has: flat drawn areas would compress unrealistically.
    noise = images.Image.effect_noise((width, height), 24).convert("RGB")
    picture = images.Image.blend(picture, noise, 0.12).filter(ImageFilter.SMOOTH)
    exif = images.make_exif(
        taken_at=datetime.datetime(2026, 5, 1, 10, 0, tzinfo=datetime.UTC),
        lat=27.2051,
        lon=107.9051,
        accuracy=4.0,
        orientation=6,
    )
    return images.jpeg(picture, exif=exif, quality=92)


def naive(data: bytes) -> tuple[bytes, bytes]:
    from PIL import Image, ImageOps

    im = Image.open(io.BytesIO(data))
    im.load()
    im = ImageOps.exif_transpose(im).convert("RGB")
    outputs = []
    for side in (1600, 320):
        scale = side / max(im.size)
        size = (round(im.width * scale), round(im.height * scale))
        small = im.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=85)
        outputs.append(buffer.getvalue())
    return outputs[0], outputs[1]


def best_of(repeat: int, function, *args) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import PIL
    from PIL import Image

    from inspections import imaging

    data = make_photo(args.width, args.height)
    megapixels = args.width * args.height / 1e6
    print(
        f"bench_photos: {args.width}×{args.height} JPEG ({megapixels:.0f} MP, "
        f"{len(data) / 1e6:.1f} MB, orientation 6), Pillow {PIL.__version__}, "
        f"best of {args.repeat}"
    )

    made = imaging.make_derivatives(data, "JPEG")
    display, thumb = Image.open(io.BytesIO(made.display)), Image.open(io.BytesIO(made.thumbnail))
    naive_display, _naive_thumb = naive(data)
    assert display.size == Image.open(io.BytesIO(naive_display)).size == (1200, 1600)
    assert thumb.size == (240, 320)

    check = best_of(args.repeat, imaging.check_image, data)
    ours = best_of(args.repeat, imaging.make_derivatives, data, "JPEG")
    baseline = best_of(args.repeat, naive, data)
    print(f"upload check (1/8-scale decode):     {check * 1000:8.1f} ms")
    print(f"ours  (draft decode, EXIF, pHash):   {ours * 1000:8.1f} ms per photo")
    print(f"naive (full decode, LANCZOS resize): {baseline * 1000:8.1f} ms per photo")
    print(f"speedup = naive / ours = {baseline / ours:.1f}x")


if __name__ == "__main__":
    main()
