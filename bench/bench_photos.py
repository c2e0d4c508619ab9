#!/usr/bin/env python
"""Benchmark: our photo processing of a 12 MP JPEG against a naive full-decode pipeline.

    .venv/bin/python bench/bench_photos.py [--repeat N] [--width 4000 --height 3000]

No database is used (DATABASE_URL may be anything). The bench draws a 4000×3000 house-like
picture, saves it as a phone would (JPEG quality 92, EXIF with time, GPS and orientation 6),
and times, best of N runs each (wall clock and CPU time, the runs of both interleaved):

  ours      inspections.imaging.make_derivatives: EXIF read, DCT-scaled decode with
            Image.draft (libjpeg decodes at 1/2 here, never the full 12 MP), orientation,
            display copy (1600 px, BICUBIC: imaging.display_copy) and thumbnail (320 px,
            LANCZOS, from the display copy), pHash, both JPEGs written without metadata;
  naive     open, full decode, ImageOps.exif_transpose, one LANCZOS resize of the decoded
            image to 1600 px, the 320 px thumbnail from that copy, both saved as JPEG (no
            EXIF read, no pHash: less work than ours).

Peak memory: each pipeline runs once more in a fresh subprocess, which resets its peak RSS
(/proc/self/clear_refs) after the imports and reports VmRSS then and VmHWM after the photo.

Quality: the display filter (BICUBIC) against LANCZOS on the same decoded pixels, for
photo-like pictures and a 1/f natural texture (detail at every scale): PSNR, mean absolute
error and largest difference, next to what the JPEG at quality 85 changes in the LANCZOS
copy anyway; and whether the pHash stays the same (its own LANCZOS steps are unchanged).
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="Runs per pipeline (best is kept).")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--quality-images", type=int, default=6, help="Photo-like pictures (6).")
    parser.add_argument("--peak", help=argparse.SUPPRESS)  # subprocess: "ours FILE" / "naive FILE"
    return parser.parse_args(argv)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def make_photo(width: int, height: int) -> bytes:
    """A 12 MP phone-like JPEG: stored landscape with orientation 6, EXIF time and GPS."""
    import datetime

    from tests.inspections import images, photo_quality

    exif = images.make_exif(
        taken_at=datetime.datetime(2026, 5, 1, 10, 0, tzinfo=datetime.UTC),
        lat=27.2051,
        lon=107.9051,
        accuracy=4.0,
        orientation=6,
    )
    return images.jpeg(photo_quality.photo_like(2026, size=(width, height)), exif=exif, quality=92)


def naive(data: bytes) -> tuple[bytes, bytes]:
    from PIL import Image, ImageOps

    im = Image.open(io.BytesIO(data))
    im.load()
    im = ImageOps.exif_transpose(im).convert("RGB")
    display = im.resize(_fit(im.size, 1600), Image.Resampling.LANCZOS)
    thumb = display.resize(_fit(display.size, 320), Image.Resampling.LANCZOS)
    outputs = []
    for copy in (display, thumb):
        buffer = io.BytesIO()
        copy.save(buffer, "JPEG", quality=85)
        outputs.append(buffer.getvalue())
    return outputs[0], outputs[1]


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return round(size[0] * scale), round(size[1] * scale)


def ours(data: bytes):
    from inspections import imaging

    return imaging.make_derivatives(data, "JPEG")


def timed_runs(repeat: int, pipelines: dict, data: bytes) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU seconds per pipeline, the runs interleaved."""
    best = {name: (float("inf"), float("inf")) for name in pipelines}
    for _ in range(repeat):
        for name, function in pipelines.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function(data)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def peak_memory(name: str, path: str) -> dict:
    """Run one pipeline once in a fresh process; its ru_maxrss before and after, in MB."""
    output = subprocess.run(
        [sys.executable, __file__, "--peak", f"{name} {path}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_child(spec: str) -> None:
    name, path = spec.split(" ", 1)
    setup_django()
    from inspections import imaging  # noqa: F401  (imports before the "before" figure)

    data = Path(path).read_bytes()
    # The high-water mark starts at what the process holds now: ru_maxrss alone would carry
    # the size of the parent at fork time.
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")
    before = _status_mb("VmRSS")
    {"ours": ours, "naive": naive}[name](data)
    print(json.dumps({"before_mb": before, "peak_mb": _status_mb("VmHWM")}))


def display_step(data: bytes) -> dict[str, float]:
    """The 1600 px resize alone, on the pixels our pipeline decodes: LANCZOS vs ours."""
    from PIL import Image, ImageOps

    from inspections import imaging

    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (1600, 1200))
    decoded = ImageOps.exif_transpose(im).convert("RGB")
    result = {}
    for label, resample in (("LANCZOS", Image.Resampling.LANCZOS), ("ours", None)):
        times = []
        for _ in range(5):
            copy = decoded.copy()
            started = time.process_time()
            if resample is None:
                imaging.display_copy(copy)
            else:
                copy.thumbnail((imaging.DISPLAY_SIZE,) * 2, resample)
            times.append(time.process_time() - started)
        result[label] = min(times)
    return result


def quality_rows(count: int) -> list[tuple[str, float, float, int, float, bool]]:
    """(picture, PSNR dB, MAE, max difference, JPEG q85 MAE of the LANCZOS copy, same pHash)."""
    import numpy as np
    from PIL import Image

    from inspections import imaging
    from tests.inspections import photo_quality

    pictures = [(f"photo-like #{seed}", photo_quality.photo_like(seed)) for seed in range(count)]
    pictures.append(("1/f natural texture", photo_quality.natural_texture(2026)))
    rows = []
    for label, picture in pictures:
        reference = picture.copy()
        reference.thumbnail((imaging.DISPLAY_SIZE,) * 2, Image.Resampling.LANCZOS)
        mine = imaging.display_copy(picture.copy())
        largest = int(
            np.abs(np.asarray(mine, dtype=np.int16) - np.asarray(reference, dtype=np.int16)).max()
        )
        published = photo_quality.jpeg_roundtrip(reference, imaging.JPEG_QUALITY)
        hashes = []
        for display in (mine, reference):
            thumb = display.copy()
            thumb.thumbnail((imaging.THUMBNAIL_SIZE,) * 2, Image.Resampling.LANCZOS)
            hashes.append(imaging.phash(thumb))
        rows.append(
            (
                label,
                photo_quality.psnr(mine, reference),
                photo_quality.mean_absolute_error(mine, reference),
                largest,
                photo_quality.mean_absolute_error(published, reference),
                imaging.hamming(*hashes),
            )
        )
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.peak:
        peak_child(args.peak)
        return
    setup_django()
    import PIL
    from PIL import Image

    data = make_photo(args.width, args.height)
    megapixels = args.width * args.height / 1e6
    print(
        f"bench_photos: {args.width}×{args.height} JPEG ({megapixels:.0f} MP, "
        f"{len(data) / 1e6:.1f} MB, orientation 6), Pillow {PIL.__version__}, "
        f"best of {args.repeat}"
    )

    made = ours(data)
    display, thumb = Image.open(io.BytesIO(made.display)), Image.open(io.BytesIO(made.thumbnail))
    naive_display, naive_thumb = naive(data)
    assert display.size == Image.open(io.BytesIO(naive_display)).size == (1200, 1600)
    assert thumb.size == Image.open(io.BytesIO(naive_thumb)).size == (240, 320)

    from inspections import imaging

    check = timed_runs(args.repeat, {"check": imaging.check_image}, data)["check"]
    best = timed_runs(args.repeat, {"ours": ours, "naive": naive}, data)
    step = display_step(data)
    with tempfile.NamedTemporaryFile(suffix=".jpg") as photo:
        photo.write(data)
        photo.flush()
        memory = {name: peak_memory(name, photo.name) for name in ("ours", "naive")}

    def line(label: str, name: str) -> str:
        wall, cpu = best[name]
        mem = memory[name]
        return (
            f"{label} {wall * 1000:7.1f} ms per photo (CPU {cpu * 1000:6.1f} ms), peak RSS "
            f"{mem['peak_mb']:6.0f} MB (+{mem['peak_mb'] - mem['before_mb']:.0f} MB for the photo)"
        )

    print(f"upload check (1/8-scale decode):      {check[0] * 1000:7.1f} ms")
    print(line("ours  (draft decode, BICUBIC 1600): ", "ours"))
    print(line("naive (full decode, LANCZOS resize):", "naive"))
    print(
        f"the 1600 px step alone (CPU): LANCZOS {step['LANCZOS'] * 1000:.1f} ms, "
        f"ours {step['ours'] * 1000:.1f} ms ({step['LANCZOS'] / step['ours']:.1f}x)"
    )
    print(
        f"ratio = naive / ours = {best['naive'][0] / best['ours'][0]:.1f}x wall, "
        f"{best['naive'][1] / best['ours'][1]:.1f}x CPU; peak memory "
        f"{memory['naive']['peak_mb'] - memory['naive']['before_mb']:.0f} MB / "
        f"{memory['ours']['peak_mb'] - memory['ours']['before_mb']:.0f} MB for the photo"
    )

    print("display filter against LANCZOS (1600 px from 2000×1500, as decoded):")
    print("  picture                  PSNR dB    MAE   max  | JPEG q85 MAE  | pHash bits moved")
    rows = quality_rows(args.quality_images)
    for label, psnr, mae, largest, jpeg_mae, moved in rows:
        print(f"  {label:22s} {psnr:8.1f} {mae:7.2f} {largest:5d}  | {jpeg_mae:12.2f}  | {moved:d}")
    same = sum(1 for row in rows if row[5] == 0)
    print(
        f"  pHash identical for {same} of {len(rows)} pictures, at most "
        f"{max(row[5] for row in rows)} bits moved (near-duplicate limit: 8)"
    )


if __name__ == "__main__":
    main()
