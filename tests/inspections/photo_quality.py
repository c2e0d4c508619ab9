"""Photo-like test pictures and the figures that compare two renderings of one picture.

Used by tests/inspections/test_imaging.py and bench/bench_photos.py to judge the display
copy's resampling filter against LANCZOS.
"""

import io

import numpy as np
from PIL import Image, ImageFilter

from tests.inspections import images


def photo_like(seed: int, size: tuple[int, int] = (2000, 1500)) -> Image.Image:
    """The house scene with the fine texture and softness of a phone photo.

    A drawn scene alone is flat areas and hard edges; sensor-like noise, smoothed as a
    camera's processing does, gives it the texture that real photos compress and resample with.
    """
    picture = images.house_picture(seed, size=size)
    noise = Image.effect_noise(size, 24).convert("RGB")
    return Image.blend(picture, noise, 0.12).filter(ImageFilter.SMOOTH)


def natural_texture(seed: int, size: tuple[int, int] = (2000, 1500)) -> Image.Image:
    """Colour noise with the 1/f amplitude spectrum of natural scenes (foliage, rubble).

    Detail at every scale up to the pixel: a hard case for a resampling filter.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    bands = []
    for _channel in range(3):
        spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius
        band = np.fft.irfft2(spectrum, s=(height, width))
        band = (band - band.mean()) / band.std() * 45 + 128
        bands.append(np.clip(band, 0, 255))
    return Image.fromarray(np.stack(bands, axis=-1).astype(np.uint8), "RGB")


def _pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float64)


def mean_absolute_error(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel value, on the 0–255 scale."""
    return float(np.abs(_pixels(a) - _pixels(b)).mean())


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB (higher is closer; inf for identical pixels)."""
    mse = float(((_pixels(a) - _pixels(b)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def jpeg_roundtrip(im: Image.Image, quality: int) -> Image.Image:
    """The picture after a JPEG encoding at ``quality`` and a decode."""
    return Image.open(io.BytesIO(images.jpeg(im, quality=quality))).convert("RGB")
