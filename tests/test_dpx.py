"""DPX film-scan frames: read at full depth through FFmpeg's decoder, colorized back to DPX with their film headers."""

import subprocess

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from archivecolor import dpx
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


def with_film_headers(data: bytes, frame: int) -> bytes:
    """FFmpeg writes no film or television header; a scanner does: keycode, frame position, timecode."""
    film = bytearray(b"\xff" * 384)
    film[0:2], film[2:4], film[6:12], film[12:16] = b"KD", b"52", b"KU1234", b"5678"  # keycode: maker, stock, prefix, count
    film[48:52] = (1000 + frame).to_bytes(4, "big")  # frame position in the sequence
    film[68:100] = b"Harbour reel 1".ljust(32, b"\x00")  # frame identification
    film[256:260] = (0x10000000 + frame).to_bytes(4, "big")  # television header: SMPTE timecode 10:00:00:ff
    head = bytearray(data[:1664])
    head[4:8], head[28:32] = (1664 + 384).to_bytes(4, "big"), (384).to_bytes(4, "big")  # image offset, industry size
    head[808:812] = (1664 + 384).to_bytes(4, "big")  # element 0's data offset
    body = data[1664:]
    head[16:20] = (2048 + len(body)).to_bytes(4, "big")
    return bytes(head) + bytes(film) + body


def test_a_dpx_reel_becomes_dpx_frames_that_keep_their_film_headers(tmp_path, tiny_weights):
    reel = tmp_path / "reel"
    reel.mkdir()
    for i in range(3):
        write_dpx(reel / f"reel_{i:07d}.dpx", np.roll(grey_ramp(), 4 * i, axis=1), "gray16le", "gray16be")
        data = bytearray(with_film_headers((reel / f"reel_{i:07d}.dpx").read_bytes(), i))
        data[260:260 + 12], data[460:460 + 14] = b"Harbour 1921", b"(c) Film Archv"  # project, copyright fields
        data[801] = 1  # transfer: printing density, as a film scanner's log scan says
        (reel / f"reel_{i:07d}.dpx").write_bytes(bytes(data))
    plan = plan_folder(reel, tmp_path / "plan", FolderConfig())  # the dry run reads DPX headers
    assert not plan.unreadable and plan.pixels == 3 * 48 * 64 and [t.target.suffix for t in plan.todo] == [".dpx"] * 3
    result = CliRunner().invoke(main, ["video", str(reel), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert "its DPX frames hold printing density" in result.output  # said, since no log-to-display conversion is made
    frames = sorted((tmp_path / "reel-colorized").iterdir())
    assert [p.name for p in frames] == ["reel_0000000.dpx", "reel_0000001.dpx", "reel_0000002.dpx"]
    source, out = (reel / "reel_0000001.dpx").read_bytes(), frames[1].read_bytes()
    assert out[1664:2048] == source[1664:2048]  # keycode, frame position 1001, timecode 10:00:00:01, as scanned
    assert out[801] == 1 and out[800] == dpx.RGB and out[803] == 16  # still printing density; now RGB, at 16 bits
    assert out[160:160 + len(PROVENANCE)].decode() == PROVENANCE
    picture = dpx.read(out)  # decoded by FFmpeg, not by our own code
    assert picture.pixels.shape == (48, 64, 3) and picture.pixels.dtype == np.uint16
    assert (picture.project, picture.copyright) == ("Harbour 1921", "(c) Film Archv")
    assert (reel / "reel_0000001.dpx").read_bytes() == source  # the scan itself untouched


@pytest.mark.parametrize("out_fmt, bits", [("gbrp10le", 10), ("gbrp10be", 10), ("gbrp12be", 12), ("gbrp12le", 12), ("rgb48be", 16)])
def test_dpx_written_back_keeps_the_scans_byte_order_and_depth(tmp_path, out_fmt, bits):
    rgb = np.random.default_rng(1).integers(0, 65536, (12, 10, 3)).astype(np.uint16)
    write_dpx(tmp_path / "f.dpx", rgb, "rgb48le", out_fmt)
    source = bytearray((tmp_path / "f.dpx").read_bytes())
    order = "little" if out_fmt.endswith("le") else "big"
    source_peak = (1 << source[803]) - 1
    source[792:796] = source_peak.to_bytes(4, order)  # reference white: the top code of the source's depth
    picture = dpx.read(bytes(source))
    data = dpx.encode(picture.pixels, picture.header, "test")
    assert data[:4] == source[:4] and data[803] == bits and int.from_bytes(data[792:796], order) == (1 << bits) - 1
    back = dpx.read(data)  # FFmpeg's decoder unpacks what we packed
    assert np.array_equal(back.pixels, picture.pixels)  # at the source's depth, not a code value lost


def test_format_dpx_writes_ten_bit_from_eight_bit_pictures(tmp_path, tiny_weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    grey = (np.arange(40 * 56).reshape(40, 56) % 251).astype(np.uint8)
    assert cv2.imwrite(str(photos / "a.png"), grey)
    result = CliRunner().invoke(main, ["folder", str(photos), "--format", "dpx", "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "photos-colorized" / "a.dpx").read_bytes()
    assert data[803] == 10 and int.from_bytes(data[28:32], "big") == 0  # no film header to carry
    picture = dpx.read(data)
    assert picture.pixels.shape == (40, 56, 3)


def test_a_cut_off_dpx_is_one_clear_line(tmp_path):
    write_dpx(tmp_path / "f.dpx", grey_ramp(), "gray16le", "gray16be")
    (tmp_path / "cut.dpx").write_bytes((tmp_path / "f.dpx").read_bytes()[:3000])
    with pytest.raises(BadInput) as info:
        read_stills(tmp_path / "cut.dpx")
    assert "\n" not in str(info.value) and "DPX" in str(info.value)
