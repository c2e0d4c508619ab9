"""Image checks, EXIF, published copies and the perceptual hash, on real files."""

import datetime
import io
import itertools
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from inspections import imaging
from tests.inspections import images, photo_quality

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def reopen(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# --- accepting and refusing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (images.jpeg, "JPEG"),
        (images.png, "PNG"),
        (images.webp, "WEBP"),
        (images.heic, "HEIF"),
    ],
)
def test_each_accepted_format_is_recognised_by_content(make, fmt):
    assert imaging.check_image(make()) == imaging.CheckedImage(format=fmt, width=800, height=600)


def test_a_heic_with_the_generic_mif1_brand_is_accepted():
    data = bytearray(images.heic())
    assert data[8:12] == b"heic"
    data[8:12] = b"mif1"
    assert imaging.check_image(bytes(data)).format == "HEIF"


def test_an_html_page_is_refused_as_an_unsupported_format():
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.html_page())
    assert caught.value.code == "unsupported_format"
    assert str(caught.value.message) == (
        "The file is not a JPEG, PNG, WebP or HEIC/HEIF image (judged by its content, not its "
        "name)."
    )


def test_a_gif_is_refused_although_pillow_could_read_it():
    buffer = io.BytesIO()
    images.house_picture(1).save(buffer, "GIF")
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(buffer.getvalue())
    assert caught.value.code == "unsupported_format"


def test_an_empty_file_is_refused():
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(b"")
    assert (caught.value.code, str(caught.value.message)) == ("empty", "The file is empty.")


def test_a_truncated_jpeg_is_refused_as_corrupt():
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.corrupt_jpeg())
    assert caught.value.code == "corrupt"
    assert str(caught.value.message).startswith(
        "The JPEG image is damaged and cannot be decoded: image file is truncated"
    )


def test_jpeg_magic_followed_by_garbage_is_refused_as_corrupt():
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(b"\xff\xd8\xff\xe0" + b"garbage" * 20)
    assert caught.value.code == "corrupt"
    assert str(caught.value.message).startswith(
        "The file starts like a JPEG image but cannot be read:"
    )


def test_a_png_with_html_after_its_end_is_refused():
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.png_html_polyglot())
    assert caught.value.code == "corrupt"
    assert str(caught.value.message) == (
        f"The PNG file has {len(images.POLYGLOT_HTML)} bytes of other data after the end of "
        "the image; it is refused because it may hide other content."
    )


def test_a_decompression_bomb_is_refused_from_its_header(settings):
    data = images.png_bomb(30000, 30000)
    assert len(data) < 2000
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(data)
    assert caught.value.code == "decompression_bomb"
    assert str(caught.value.message) == (
        "The image declares more than 52,000,000 pixels; it is refused as a possible "
        "decompression bomb."
    )


def test_an_image_just_over_the_pixel_limit_is_refused_with_its_size(settings):
    settings.ANJU_PHOTO_MAX_PIXELS = 800 * 600 - 1
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.jpeg())
    assert caught.value.code == "decompression_bomb"
    assert str(caught.value.message) == (
        "The image declares 800 × 600 = 480,000 pixels, more than the limit of 479,999; it is "
        "refused as a possible decompression bomb."
    )


def rgba_png_header(width: int, height: int) -> bytes:
    """A small PNG whose header declares an 8-bit RGBA image of width × height (a few rows
    of data): what a bomb under the pixel limit looks like."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # colour type 6: RGBA
    rows = zlib.compress(b"\x00" * (width * 4 + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_an_image_under_the_pixel_limit_but_over_the_memory_budget_is_refused_from_its_header():
    # 7,000 × 7,000 = 49 MP, under the 52 MP limit; as RGBA it would decode to 196 MB.
    data = rgba_png_header(7000, 7000)
    assert len(data) < 2000
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(data, decode=False)
    assert caught.value.code == "decompression_bomb"
    assert str(caught.value.message) == (
        "The image declares 7000 × 7000 pixels (RGBA); decoding it would take 196 MB of "
        "memory, more than the limit of 157 MB; it is refused as a possible decompression bomb."
    )


def test_grayscale_counts_as_the_rgb_copy_it_becomes(settings):
    settings.ANJU_PHOTO_MAX_DECODED_BYTES = 800 * 600 * 3 - 1
    with pytest.raises(imaging.ImageRejected) as caught:
        imaging.check_image(images.png(Image.new("L", (800, 600))))
    assert str(caught.value.message) == (
        "The image declares 800 × 600 pixels (L); decoding it would take 1 MB of memory, more "
        "than the limit of 1 MB; it is refused as a possible decompression bomb."
    )
    settings.ANJU_PHOTO_MAX_DECODED_BYTES = 800 * 600 * 3
    assert imaging.check_image(images.png(Image.new("L", (800, 600)))).width == 800


@pytest.mark.parametrize(
    ("width", "height"),
    [(4000, 3000), (8064, 6048), (8160, 6144)],
    ids=["12MP", "48MP", "50MP"],
)
def test_phone_photos_up_to_50_megapixels_pass_the_default_limits(width, height):
    # The header alone decides (as an upload does when a worker decodes): 8-bit RGB.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows)
    data += _chunk(b"IEND", b"")
    assert imaging.check_image(data, decode=False) == imaging.CheckedImage("PNG", width, height)


def test_decoded_bytes_counts_bands_and_sample_size():
    assert imaging.decoded_bytes(10, 10, "RGB") == 300
    assert imaging.decoded_bytes(10, 10, "RGBA") == 400
    assert imaging.decoded_bytes(10, 10, "P") == 300
    assert imaging.decoded_bytes(10, 10, "I;16") == 600
    assert imaging.decoded_bytes(10, 10, "CMYK") == 400


def test_without_decoding_a_damaged_jpeg_passes_the_header_check():
    assert imaging.check_image(images.corrupt_jpeg(), decode=False).format == "JPEG"
    with pytest.raises(imaging.ImageRejected):
        imaging.check_image(images.corrupt_jpeg())


# --- EXIF ----------------------------------------------------------------------------------


def test_exif_gps_with_south_and_west_references_is_negative():
    exif = images.make_exif(lat=-27.2051, lon=-107.9049, accuracy=4.5)
    data = imaging.read_exif(reopen(images.jpeg(exif=exif)))
    assert data.latitude == pytest.approx(-27.2051, abs=1e-6)
    assert data.longitude == pytest.approx(-107.9049, abs=1e-6)
    assert data.accuracy_m == 4.5


def test_exif_gps_north_east_time_with_offset_and_device():
    taken = datetime.datetime(2026, 5, 1, 10, 15, 30, tzinfo=SHANGHAI)
    exif = images.make_exif(taken_at=taken, lat=27.2051, lon=107.9049, make="Xiaomi", model="14")
    data = imaging.read_exif(reopen(images.jpeg(exif=exif)))
    assert (data.latitude, data.longitude) == (
        pytest.approx(27.2051, abs=1e-6),
        pytest.approx(107.9049, abs=1e-6),
    )
    assert data.taken_at == taken
    assert data.taken_at.utcoffset() == datetime.timedelta(hours=8)
    assert (data.make, data.model, data.accuracy_m) == ("Xiaomi", "14", None)


def test_exif_time_without_offset_is_read_in_the_site_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    exif = images.make_exif(taken_at="2026:05:01 10:15:30")
    data = imaging.read_exif(reopen(images.jpeg(exif=exif)))
    assert data.taken_at == datetime.datetime(2026, 5, 1, 2, 15, 30, tzinfo=datetime.UTC)


def test_heic_exif_is_read():
    taken = datetime.datetime(2026, 5, 1, 10, 0, tzinfo=SHANGHAI)
    exif = images.make_exif(taken_at=taken, lat=27.2, lon=107.9, make="Apple", model="iPhone 15")
    data = imaging.read_exif(imaging.open_image(images.heic(exif=exif), "HEIF"))
    assert (data.taken_at, data.make, data.model) == (taken, "Apple", "iPhone 15")
    assert data.latitude == pytest.approx(27.2, abs=1e-6)


def test_a_photo_without_exif_has_nothing():
    assert imaging.read_exif(reopen(images.png())) == imaging.ExifData()


def test_zero_zero_gps_and_a_broken_date_count_as_absent():
    exif = images.make_exif(taken_at="0000:00:00 00:00:00", lat=0.0, lon=0.0)
    data = imaging.read_exif(reopen(images.jpeg(exif=exif)))
    assert (data.latitude, data.longitude, data.taken_at) == (None, None, None)


def test_dms_rationals_with_a_zero_denominator_are_invalid():
    assert imaging.dms_to_degrees(((27, 1), (12, 0), (0, 1)), "N") is None
    assert imaging.dms_to_degrees(((27, 1), (30, 1), (36, 1)), "S") == pytest.approx(-27.51)


# --- published copies ----------------------------------------------------------------------


def test_orientation_6_turns_a_landscape_photo_into_a_portrait_display_copy():
    data = images.jpeg(images.two_colour_landscape(), exif=images.make_exif(orientation=6))
    made = imaging.make_derivatives(data, "JPEG")
    display = reopen(made.display).convert("RGB")
    assert (made.width, made.height) == (200, 400)
    assert display.size == (200, 400)
    # Orientation 6 means "rotate 90° clockwise to view": the left (red) half goes on top.
    red, _green, blue = display.getpixel((100, 20))
    assert red > 200 and blue < 60
    red, _green, blue = display.getpixel((100, 380))
    assert blue > 200 and red < 60


@pytest.mark.parametrize(("make", "fmt"), [(images.webp, "WEBP"), (images.heic, "HEIF")])
def test_orientation_6_is_applied_to_webp_and_heic_too(make, fmt):
    data = make(images.two_colour_landscape(), exif=images.make_exif(orientation=6))
    made = imaging.make_derivatives(data, fmt)
    display = reopen(made.display).convert("RGB")
    assert (made.width, made.height) == display.size == (200, 400)
    assert display.getpixel((100, 20))[0] > 200


def test_display_copy_and_thumbnail_sizes():
    data = images.jpeg(images.house_picture(3, size=(4000, 3000)), quality=80)
    made = imaging.make_derivatives(data, "JPEG")
    assert reopen(made.display).size == (1600, 1200)
    assert reopen(made.thumbnail).size == (320, 240)
    assert (made.width, made.height) == (4000, 3000)


def _lanczos(im: Image.Image) -> Image.Image:
    """The display copy as it was made before: LANCZOS to DISPLAY_SIZE."""
    im = im.copy()
    im.thumbnail((imaging.DISPLAY_SIZE, imaging.DISPLAY_SIZE), Image.Resampling.LANCZOS)
    return im


@pytest.mark.parametrize(
    ("picture", "min_psnr", "max_mae"),
    [
        (photo_quality.photo_like(2026), 52.0, 0.25),
        # Detail at every scale: the hardest case, still far closer than the JPEG error.
        (photo_quality.natural_texture(2026), 38.0, 2.5),
    ],
)
def test_the_display_filter_is_within_a_hair_of_lanczos(picture, min_psnr, max_mae):
    # 2000 × 1500 is how a 12 MP JPEG comes out of the DCT-scaled decode.
    ours = imaging.display_copy(picture.copy())
    reference = _lanczos(picture)
    assert ours.size == reference.size == (1600, 1200)
    assert photo_quality.psnr(ours, reference) >= min_psnr
    assert photo_quality.mean_absolute_error(ours, reference) <= max_mae
    # What the published JPEG changes anyway is several times more.
    published = photo_quality.jpeg_roundtrip(reference, imaging.JPEG_QUALITY)
    assert photo_quality.mean_absolute_error(published, reference) > 3 * (
        photo_quality.mean_absolute_error(ours, reference)
    )


def test_the_published_display_copy_is_as_close_to_lanczos_as_a_lanczos_jpeg():
    picture = photo_quality.photo_like(7, size=(4000, 3000))
    data = images.jpeg(picture, quality=92)
    made = imaging.make_derivatives(data, "JPEG")
    decoded = Image.open(io.BytesIO(data))
    decoded.draft("RGB", (1600, 1200))
    reference = _lanczos(decoded.convert("RGB"))
    ours = reopen(made.display).convert("RGB")
    lanczos_published = photo_quality.jpeg_roundtrip(reference, imaging.JPEG_QUALITY)
    assert ours.size == reference.size == (1600, 1200)
    assert (
        photo_quality.psnr(ours, reference)
        >= photo_quality.psnr(lanczos_published, reference) - 0.5
    )


def test_the_phash_moves_at_most_a_median_tie_from_the_lanczos_display_copy():
    """The hash's own steps are unchanged (LANCZOS thumbnail, 32 × 32 LANCZOS, DCT); only its
    input comes from the BICUBIC display copy. Most hashes stay identical; a pair of
    coefficients tied at the median may swap (2 bits), far inside the near-duplicate limit."""
    distances = []
    for seed in range(12):
        picture = (
            photo_quality.photo_like(seed)
            if seed % 2
            else images.house_picture(seed, size=(2000, 1500))
        )
        hashes = []
        for display in (imaging.display_copy(picture.copy()), _lanczos(picture)):
            display.thumbnail((imaging.THUMBNAIL_SIZE,) * 2, Image.Resampling.LANCZOS)
            hashes.append(imaging.phash(display))
        distances.append(imaging.hamming(*hashes))
    assert max(distances) <= 2
    assert distances.count(0) >= 10


def test_small_photos_are_not_enlarged():
    made = imaging.make_derivatives(images.png(images.house_picture(1, size=(300, 200))), "PNG")
    assert reopen(made.display).size == (300, 200)
    assert reopen(made.thumbnail).size == (300, 200)


@pytest.mark.parametrize("make", [images.jpeg, images.webp, images.heic])
def test_published_copies_carry_no_exif_gps_comment_or_profile(make):
    exif = images.make_exif(
        taken_at=datetime.datetime(2026, 5, 1, 10, 0, tzinfo=SHANGHAI),
        lat=27.2051,
        lon=107.9049,
        comment="secret note",
    )
    kwargs = {"exif": exif}
    if make is images.jpeg:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        kwargs.update(comment=b"camera comment", icc_profile=srgb)
    data = make(**kwargs)
    made = imaging.make_derivatives(data, imaging.sniff_format(data))
    assert made.exif.latitude == pytest.approx(27.2051, abs=1e-6)
    for copy in (made.display, made.thumbnail):
        im = reopen(copy)
        assert im.format == "JPEG"
        assert dict(im.getexif()) == {}
        assert set(im.info) <= {
            "jfif",
            "jfif_version",
            "jfif_unit",
            "jfif_density",
            "progressive",
            "progression",
        }
        for marker in (
            b"Exif\x00\x00",
            b"http://ns.adobe.com/xap",
            b"ICC_PROFILE",
            b"secret note",
            b"camera comment",
            b"Huawei",
        ):
            assert marker not in copy


def test_a_png_with_html_in_a_text_chunk_is_published_without_it():
    made = imaging.make_derivatives(images.png_with_html_text(), "PNG")
    assert b"<script" not in made.display and b"<script" not in made.thumbnail


def test_a_transparent_png_is_published_on_white():
    im = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    made = imaging.make_derivatives(images.png(im), "PNG")
    assert reopen(made.display).convert("RGB").getpixel((50, 50)) == (255, 255, 255)


def test_a_16_bit_grayscale_png_is_published():
    im = Image.new("I;16", (64, 48), 40000)
    made = imaging.make_derivatives(images.png(im), "PNG")
    value = reopen(made.display).convert("L").getpixel((10, 10))
    assert abs(value - 40000 // 256) <= 2


# --- perceptual hash -----------------------------------------------------------------------


def test_phash_survives_reencoding_and_a_slight_crop():
    for seed in range(12):
        original = images.jpeg(seed=seed, quality=92)
        copy = images.reencoded_crop(original, crop=0.02, quality=55)
        distance = imaging.hamming(imaging.phash(reopen(original)), imaging.phash(reopen(copy)))
        assert distance <= 8, (seed, distance)


def test_phash_of_different_houses_is_far_apart():
    hashes = [imaging.phash(images.house_picture(seed)) for seed in range(12)]
    distances = [imaging.hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > 8
    assert sum(distances) / len(distances) > 24


def test_phash_is_the_same_for_a_rotated_original_and_its_oriented_copy():
    upright = images.house_picture(5)
    tagged = images.jpeg(upright.rotate(90, expand=True), exif=images.make_exif(orientation=6))
    assert (
        imaging.hamming(
            imaging.make_derivatives(tagged, "JPEG").phash,
            imaging.make_derivatives(images.jpeg(upright), "JPEG").phash,
        )
        <= 4
    )


def test_signed_storage_round_trips_every_bit():
    for value in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 0x8000_0000_0000_0001):
        signed = imaging.to_signed64(value)
        assert -(1 << 63) <= signed < 1 << 63
        assert imaging.to_unsigned64(signed) == value
        assert imaging.hash_bands(signed) == imaging.hash_bands(value)
    assert imaging.to_signed64((1 << 64) - 1) == -1


def test_bands_are_21_21_and_22_bits_top_first():
    value = 0x0123_4567_89AB_CDEF
    top, middle, bottom = imaging.hash_bands(value)
    assert imaging.HASH_BAND_BITS == (21, 21, 22)
    assert top == value >> 43 and middle == (value >> 22) & 0x1FFFFF
    assert bottom == value & 0x3FFFFF
    assert (top << 43) | (middle << 22) | bottom == value
    assert imaging.hash_bands((1 << 64) - 1) == (0x1FFFFF, 0x1FFFFF, 0x3FFFFF)


def test_hamming_counts_differing_bits_of_signed_and_unsigned_hashes():
    assert imaging.hamming(-1, 0) == 64
    assert imaging.hamming(imaging.to_signed64(1 << 63), 0) == 1
    assert imaging.hamming(0b1011, 0b0001) == 2


@pytest.mark.parametrize(
    "value, offset",
    [
        ("0001:01:01 00:00:00", "+08:00"),
        ("9999:12:31 23:59:59", "-12:00"),
        ("1899:12:31 23:59:59", None),
    ],
)
def test_an_exif_time_outside_1900_to_2999_is_no_time(value, offset):
    # A reset camera clock or a forgery; at the calendar's ends it cannot be stored in UTC.
    assert imaging.parse_exif_time(value, offset) is None


def test_an_exif_time_inside_the_bounds_keeps_its_offset():
    taken = imaging.parse_exif_time("2026:05:01 10:00:00", "+08:00")
    assert taken.isoformat() == "2026-05-01T10:00:00+08:00"
