"""HEIC stills (phones' photos of prints): read upright at full depth, colorized to JPEG with their metadata."""

import json
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from archivecolor import icc
from archivecolor.cli import main
from archivecolor.imageio import PROVENANCE, BadInput, read_stills

from icc_profiles import adobe_rgb_profile

pillow_heif = pytest.importorskip("pillow_heif")
pillow_heif.register_heif_opener()


def print_photo(h=48, w=64) -> np.ndarray:
    """A warm-toned photo of a print, as a phone takes it: RGB with a slight colour cast."""
    y, x = np.mgrid[0:h, 0:w]
    grey = (40 + 3 * x + y).clip(0, 255)
    return np.dstack([grey + 6, grey + 2, grey - 4]).clip(0, 255).astype(np.uint8)


def test_a_heic_is_read_upright_with_its_metadata(tmp_path):
    rgb = print_photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # the phone was held sideways
    exif[0x010F] = "Apple"
    path = tmp_path / "IMG_0001.HEIC"
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), icc_profile=adobe_rgb_profile(), quality=95)
    still = read_stills(path)[0]
    assert still.pixels.shape == (64, 48, 3)  # rotated once (libheif applies it; EXIF's is not applied again)
    assert np.abs(still.pixels.astype(int) - np.rot90(rgb, k=-1)).mean() < 3
    assert still.metadata.icc == adobe_rgb_profile() and still.metadata.descriptive[0x010F] == "Apple"


def test_ten_bit_heif_stays_deep(tmp_path):
    deep = np.linspace(0, 65535, 40 * 50 * 3).reshape(40, 50, 3).astype(np.uint16)
    pillow_heif.from_bytes(mode="RGB;16", size=(50, 40), data=deep.tobytes()).save(tmp_path / "DSCF0001.HIF", quality=-1)
    pixels = read_stills(tmp_path / "DSCF0001.HIF")[0].pixels
    assert pixels.dtype == np.uint16 and len(np.unique(pixels)) > 256  # not squeezed into 8 bits


def test_folder_colorizes_heic_to_jpeg_and_refuses_a_burst_it_cannot_hold(tmp_path, tiny_weights):
    phone = tmp_path / "phone"
    phone.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    Image.fromarray(print_photo()).save(phone / "IMG_0001.HEIC", exif=exif.tobytes(), icc_profile=adobe_rgb_profile())
    frames = [Image.fromarray(np.roll(print_photo(), 5 * i, axis=1)) for i in range(3)]
    frames[0].save(phone / "IMG_0002.HEIC", save_all=True, append_images=frames[1:])
    (phone / "IMG_0003.HEIC").write_bytes((phone / "IMG_0001.HEIC").read_bytes()[:300])  # cut off in a copy
    out = tmp_path / "out"
    args = ["folder", str(phone), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    report = {f["source"]: f for f in json.loads((out / "archivecolor-report.json").read_text())["files"]}
    assert report["IMG_0001.HEIC"]["status"] == "done" and report["IMG_0001.HEIC"]["output"] == "IMG_0001.jpg"
    assert "3 pictures (a burst), and JPEG holds one picture" in report["IMG_0002.HEIC"]["reason"]
    assert report["IMG_0003.HEIC"]["status"] == "failed" and "IMG_0003.HEIC" in result.output
    with Image.open(out / "IMG_0001.jpg") as im:
        assert im.format == "JPEG" and im.size == (64, 48)
        assert im.getexif()[0x010F] == "Apple" and im.getexif()[0x0131].startswith(PROVENANCE)
        assert im.info["icc_profile"] == icc.srgb_profile()  # its Adobe RGB numbers were converted
    # the dry run reads HEIC headers too, and a burst goes whole into a TIFF
    plan = CliRunner().invoke(main, args + ["--dry-run", "--format", "tiff"])
    assert "unreadable header" in plan.output and "IMG_0003.HEIC" in plan.output
    assert CliRunner().invoke(main, args + ["--format", "tiff"]).exit_code == 1  # IMG_0003 still fails
    assert len(tifffile.TiffFile(out / "IMG_0002.tif").pages) == 3


def test_without_pillow_heif_a_heic_fails_with_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "IMG_0001.heic"
    Image.fromarray(print_photo()).save(path)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(BadInput, match=r'pip install "archivecolor\[heif\]"'):
        read_stills(path)
    monkeypatch.setattr("archivecolor.heif.available", lambda: False)
    plan = CliRunner().invoke(main, ["folder", str(tmp_path), "--out", str(tmp_path.parent / "out"), "--dry-run"])
    assert plan.exit_code == 1 and 'pip install "archivecolor[heif]"' in plan.output  # the dry run says so too
