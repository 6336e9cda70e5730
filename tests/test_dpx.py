"""DPX film-scan frames: read at full depth through FFmpeg's decoder, colorized to 16-bit TIFF."""

import subprocess

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from archivecolor.cli import main
from archivecolor.folder import FolderConfig, plan_folder
from archivecolor.imageio import PROVENANCE, BadInput, read_stills
from archivecolor.video.ffmpeg import find_ffmpeg


def write_dpx(path, pixels: np.ndarray, pix_fmt: str, out_fmt: str) -> None:
    """Raw pixels -> a DPX file written by FFmpeg's DPX encoder in `out_fmt` (e.g. gray16be, gbrp10be)."""
    h, w = pixels.shape[:2]
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt,
                    "-s", f"{w}x{h}", "-i", "-", "-frames:v", "1", "-pix_fmt", out_fmt, str(path)],
                   input=pixels.tobytes(), check=True)


def grey_ramp(h=48, w=64) -> np.ndarray:
    return (np.linspace(0, 65535, h * w).reshape(h, w)).astype(np.uint16)


def test_sixteen_bit_grey_dpx_reads_exactly(tmp_path):
    ramp = grey_ramp()
    write_dpx(tmp_path / "f.dpx", ramp, "gray16le", "gray16be")
    pixels = read_stills(tmp_path / "f.dpx")[0].pixels
    assert pixels.dtype == np.uint16 and np.array_equal(pixels, ramp)


def test_ten_bit_rgb_dpx_keeps_its_depth(tmp_path):
    rgb = np.dstack([grey_ramp()] * 3)
    write_dpx(tmp_path / "f.dpx", rgb, "rgb48le", "gbrp10be")
    pixels = read_stills(tmp_path / "f.dpx")[0].pixels
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint16
    assert len(np.unique(pixels[..., 1])) > 256 and np.abs(pixels.astype(int) - rgb).max() <= 64  # 10 bits: 1/1024 of the range


def test_a_dpx_reel_becomes_sixteen_bit_tiff_frames_with_its_header_fields(tmp_path, tiny_weights):
    reel = tmp_path / "reel"
    reel.mkdir()
    for i in range(3):
        write_dpx(reel / f"reel_{i:07d}.dpx", np.roll(grey_ramp(), 4 * i, axis=1), "gray16le", "gray16be")
        data = bytearray((reel / f"reel_{i:07d}.dpx").read_bytes())
        data[260:260 + 12], data[460:460 + 14] = b"Harbour 1921", b"(c) Film Archv"  # project, copyright fields
        data[801] = 1  # transfer: printing density, as a film scanner's log scan says
        (reel / f"reel_{i:07d}.dpx").write_bytes(bytes(data))
    plan = plan_folder(reel, tmp_path / "plan", FolderConfig())  # the dry run reads DPX headers
    assert not plan.unreadable and plan.pixels == 3 * 48 * 64 and [t.target.suffix for t in plan.todo] == [".tif"] * 3
    result = CliRunner().invoke(main, ["video", str(reel), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert "its DPX frames hold printing density" in result.output  # said, since no log-to-display conversion is made
    frames = sorted((tmp_path / "reel-colorized").iterdir())
    assert [p.name for p in frames] == ["reel_0000000.tif", "reel_0000001.tif", "reel_0000002.tif"]
    with tifffile.TiffFile(frames[1]) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == (48, 64, 3) and page.software == PROVENANCE
        assert page.description == "Harbour 1921" and page.tags[33432].value == "(c) Film Archv"


def test_a_cut_off_dpx_is_one_clear_line(tmp_path):
    write_dpx(tmp_path / "f.dpx", grey_ramp(), "gray16le", "gray16be")
    (tmp_path / "cut.dpx").write_bytes((tmp_path / "f.dpx").read_bytes()[:3000])
    with pytest.raises(BadInput) as info:
        read_stills(tmp_path / "cut.dpx")
    assert "\n" not in str(info.value) and "DPX" in str(info.value)
