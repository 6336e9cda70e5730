"""Scans' ICC profiles: lightness read as the profile says, checked against littlecms; the
colorized output tagged with the profile that fits its pixels."""

import io

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image, ImageCms

from archivecolor import icc
from archivecolor.cli import main
from archivecolor.imageio import Metadata, encode_still, read_stills
from archivecolor.lab import grey_to_luminance, srgb_to_luminance
from archivecolor.render import full_luminance

from icc_profiles import (adobe_rgb_profile, display_p3_profile, dot_gain_curve, gamma_curve, grey_profile, parametric_srgb_curve,
                          profile, table_curve, xyz_tag)

LCMS_L_STEP = 100 / 255  # Pillow's 8-bit LAB mode quantises L* to this


def lcms_lightness(pixels: np.ndarray, source_profile: bytes) -> np.ndarray:
    """L* of 8-bit pixels as littlecms computes it through the profile (relative colorimetric)."""
    mode = "L" if pixels.ndim == 2 else "RGB"
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(source_profile)), ImageCms.createProfile("LAB"),
                                        mode, "LAB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    lab = np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), transform))
    return lab[..., 0].astype(np.float64) * LCMS_L_STEP


GREY_RAMP = np.arange(256, dtype=np.uint8).reshape(16, 16)


@pytest.mark.parametrize("curve", [dot_gain_curve(), gamma_curve(563)], ids=["dot-gain-20", "gray-gamma-2.2"])
def test_a_grey_profiles_lightness_matches_littlecms(curve):
    source_profile = grey_profile(curve)
    L = full_luminance(GREY_RAMP, source_profile)
    reference = lcms_lightness(GREY_RAMP, source_profile)
    assert np.abs(L - reference).max() < LCMS_L_STEP
    # and it matters: read as sRGB, the same numbers are off by more than a visible step
    assert np.abs(grey_to_luminance(GREY_RAMP) - reference).max() > 3


@pytest.mark.parametrize("make_profile", [adobe_rgb_profile, display_p3_profile], ids=["adobe-rgb", "display-p3"])
def test_an_rgb_scans_lightness_matches_littlecms(make_profile):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    L = full_luminance(rgb, make_profile())
    reference = lcms_lightness(rgb, make_profile())
    assert np.abs(L - reference).max() < LCMS_L_STEP
    assert np.abs(srgb_to_luminance(rgb) - reference).max() > 2


def test_sixteen_bit_levels_follow_the_same_curve():
    source_profile = grey_profile(dot_gain_curve())
    levels8 = np.arange(256, dtype=np.uint8)
    levels16 = levels8.astype(np.uint16) * 257
    np.testing.assert_allclose(full_luminance(levels16[None], source_profile), full_luminance(levels8[None], source_profile), atol=1e-3)


def test_profiles_that_mean_srgb_or_cannot_be_evaluated_are_read_as_srgb():
    srgb_like = profile(b"RGB ", {b"rXYZ": xyz_tag((0.4361, 0.2225, 0.0139)), b"gXYZ": xyz_tag((0.3851, 0.7169, 0.0971)),
                                  b"bXYZ": xyz_tag((0.1431, 0.0606, 0.7141)), b"rTRC": parametric_srgb_curve(),
                                  b"gTRC": parametric_srgb_curve(), b"bTRC": parametric_srgb_curve()})
    lookup_table_only = profile(b"RGB ", {b"A2B0": b"mft2" + bytes(60)})
    for source_profile in (icc.srgb_profile(), srgb_like, lookup_table_only, b"not a profile", None):
        assert icc.tone_of(source_profile) is None
    assert icc.tone_of(grey_profile(table_curve(np.linspace(0, 1, 4096) ** 2.2))) is not None
    assert icc.tone_of(grey_profile(table_curve(np.linspace(0, 1, 4096)[:2]))) is not None  # a 2-point (linear) table


def test_the_output_is_tagged_with_the_profile_that_fits_its_srgb_pixels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    opaque_rgb = b"\x00\x00\x02\x0cfake-icc-pro" + b"RGB " + bytes(range(200))
    cases = {
        "adobe": (adobe_rgb_profile(), icc.srgb_profile()),  # converted: sRGB's profile replaces it
        "dot-gain": (grey_profile(dot_gain_curve()), icc.srgb_profile()),
        "srgb": (icc.srgb_profile(), icc.srgb_profile()),  # read as sRGB and carried
        "opaque": (opaque_rgb, opaque_rgb),  # not understood: read as sRGB and carried, as before
    }
    for name, (source_profile, expected) in cases.items():
        for fmt in ("jpeg", "png", "tiff", "webp", "jp2"):
            path = tmp_path / f"{name}.{fmt}"
            path.write_bytes(encode_still(rgb, fmt, Metadata(icc=source_profile)))
            assert read_stills(path)[0].metadata.icc == expected, (name, fmt)


def test_folder_keeps_the_tones_a_dot_gain_scan_shows(tmp_path, tiny_weights):
    """A Photoshop-style grey scan (Dot Gain 20 %): its colorized output, viewed as the sRGB it is
    tagged, has the lightness the source shows through its own profile."""
    source_profile = grey_profile(dot_gain_curve())
    y, x = np.mgrid[0:96, 0:128]
    grey = ((x * 2 + y) % 256).astype(np.uint8)
    src = tmp_path / "scans"
    src.mkdir()
    tifffile.imwrite(src / "print.tif", grey, photometric="minisblack", iccprofile=source_profile)
    before = (src / "print.tif").read_bytes()
    result = CliRunner().invoke(main, ["folder", str(src), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights),
                                       "--render-size", "64", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert (src / "print.tif").read_bytes() == before
    out = read_stills(tmp_path / "out" / "print.png")[0]
    assert out.metadata.icc == icc.srgb_profile()
    shown = lcms_lightness(grey, source_profile)
    colorized = srgb_to_luminance(out.pixels)
    # 8-bit output and out-of-gamut colour clipping leave about a level; read as sRGB it was ~11 off
    assert np.abs(colorized - shown).mean() < 0.6
    assert np.abs(grey_to_luminance(grey) - shown).mean() > 5


def test_a_damaged_profile_is_read_as_none_never_raises():
    """Scanned archives hold profiles cut off or bit-flipped in copies: the pixels still decide."""
    rng = np.random.default_rng(0)
    for base in (adobe_rgb_profile(), grey_profile(dot_gain_curve()), display_p3_profile()):
        for _ in range(400):
            damaged = bytearray(base)
            for _ in range(rng.integers(1, 6)):
                damaged[rng.integers(0, len(damaged))] = rng.integers(0, 256)
            if rng.random() < 0.2:
                damaged = damaged[: rng.integers(0, len(damaged))]
            with np.errstate(all="raise"):  # no warnings leak out either
                L = full_luminance(GREY_RAMP, bytes(damaged))
            assert np.isfinite(L).all() and L.min() >= -1 and L.max() <= 101
