"""`folder` against inputs that attack it: odd entries, bombs, long names, two runs on one OUT."""

import json
import os
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from archivecolor.cli import main

from conftest import synthetic_photo, write_rgb


def _run(source: Path, out: Path, weights: Path, *extra: str):
    return CliRunner().invoke(main, ["folder", str(source), "--out", str(out), "--weights", str(weights), *extra])


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width × height (grey, 8-bit) and holds a few bytes of a compressed zero stream."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b"")


def test_links_that_loop_or_lead_nowhere_and_fifos_and_sockets_each_fail_by_name_and_the_run_goes_on(tmp_path, tiny_weights):
    src = tmp_path / "scans"
    rng = np.random.default_rng(0)
    for i in range(3):
        write_rgb(src / f"photo{i}.png", synthetic_photo(rng, 48))
    (src / "a.png").symlink_to("b.png")
    (src / "b.png").symlink_to("a.png")
    (src / "dangling.png").symlink_to("nowhere.png")
    (src / "linked.png").symlink_to("photo0.png")  # a link to a picture is that picture
    os.mkfifo(src / "pipe.png")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock.png"))
    try:
        result = _run(src, tmp_path / "out", tiny_weights)
    finally:
        sock.close()
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "out" / "archivecolor-report.json").read_text())
    status = {r["source"]: (r["status"], r["reason"]) for r in report["files"]}
    assert {k for k, v in status.items() if v[0] == "done"} == {"photo0.png", "photo1.png", "photo2.png", "linked.png"}
    assert "symbolic link loop" in status["a.png"][1] and "symbolic link loop" in status["b.png"][1]
    assert "link to nothing" in status["dangling.png"][1]
    assert "FIFO" in status["pipe.png"][1] and "socket" in status["sock.png"][1]
    for name in ("a.png", "b.png", "dangling.png", "pipe.png", "sock.png"):
        assert name in result.output  # one line each, naming it
    assert "Traceback" not in result.output and "RuntimeError" not in result.output


def test_a_decompression_bomb_is_refused_from_its_header_and_a_large_archive_scan_is_not(tmp_path, tiny_weights):
    src = tmp_path / "scans"
    src.mkdir()
    (src / "bomb.png").write_bytes(_png_header(30000, 30000))  # 900 MP in a few hundred bytes
    (src / "archive.png").write_bytes(_png_header(20000, 20000))  # 400 MP: passes the limit (then fails: its data is cut)
    write_rgb(src / "ok.png", synthetic_photo(np.random.default_rng(1), 48))
    result = _run(src, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1
    report = {r["source"]: r for r in json.loads((tmp_path / "out" / "archivecolor-report.json").read_text())["files"]}
    assert "900 megapixels, above the limit of 500" in report["bomb.png"]["reason"]
    assert "megapixels" not in report["archive.png"]["reason"]  # not refused for its size
    assert report["ok.png"]["status"] == "done"
    dry = CliRunner().invoke(main, ["folder", str(src), "--out", str(tmp_path / "dry"), "--dry-run", "--max-megapixels", "1000"])
    assert "above the limit" not in dry.output
    tight = _run(src, tmp_path / "tight", tiny_weights, "--max-megapixels", "0.001")
    report = {r["source"]: r for r in json.loads((tmp_path / "tight" / "archivecolor-report.json").read_text())["files"]}
    assert "above the limit of 0.001" in report["ok.png"]["reason"]


def test_a_file_name_of_250_bytes_is_written(tmp_path, tiny_weights):
    src = tmp_path / "scans"
    name = "é" * 60 + "x" * (250 - 120 - 4) + ".png"  # 250 bytes in UTF-8, two-byte characters at the front
    assert len(name.encode()) == 250
    write_rgb(src / name, synthetic_photo(np.random.default_rng(2), 48))
    result = _run(src, tmp_path / "out", tiny_weights)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / name).stat().st_size > 0
    assert not list((tmp_path / "out").glob(".*.part"))


def test_a_second_run_on_the_same_output_folder_is_refused_naming_the_first(tmp_path, tiny_weights):
    from archivecolor.files import hold_folder

    src = tmp_path / "scans"
    write_rgb(src / "a.png", synthetic_photo(np.random.default_rng(3), 48))
    out = tmp_path / "out"
    first = hold_folder(out, "archivecolor run")  # a run in progress (this process stands in for it)
    (out / ".a.png.abcd1234.part").write_bytes(b"half")  # its temporary, which a second run must not delete
    result = _run(src, out, tiny_weights)
    assert result.exit_code == 1
    assert f"is in use by another archivecolor run (PID {os.getpid()})" in result.output
    assert (out / ".a.png.abcd1234.part").exists() and not (out / "a.png").exists()
    first.close()  # the first run ends; its leftovers are cleaned by the next run
    assert _run(src, out, tiny_weights).exit_code == 0
    assert (out / "a.png").exists() and not (out / ".a.png.abcd1234.part").exists()


def test_a_folder_without_pictures_says_what_is_there_and_creates_nothing(tmp_path, tiny_weights, monkeypatch):
    import archivecolor.cli.common as common

    src = tmp_path / "box"
    src.mkdir()
    (src / "reel.mp4").write_bytes(b"\x00" * 64)
    (src / "notes.pdf").write_bytes(b"%PDF")
    monkeypatch.setattr(common, "open_colorizer", lambda *a, **k: pytest.fail("a model was loaded"))
    result = CliRunner().invoke(main, ["folder", str(src), "--weights", str(tiny_weights)])
    assert result.exit_code == 1
    assert f"no pictures found in {src} (1 × .mp4, 1 × .pdf): for films, use `archivecolor video {src}`" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"]  # no box-colorized/


def test_ctrl_c_stops_within_seconds_says_how_far_it_got_and_a_rerun_resumes(tmp_path, tiny_weights):
    """SIGINT as a terminal's Ctrl-C sends it (to the whole process group): exit 130, the partial
    report written, the files done kept whole, and the same command finishes the rest."""
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "scans"
    rng = np.random.default_rng(4)
    for i in range(60):
        write_rgb(src / f"p{i:02d}.png", synthetic_photo(rng, 256))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "archivecolor", "folder", str(src), "--out", str(out), "--weights", str(tiny_weights),
            "--batch-size", "1", "--jobs", "1", "--render-size", "256"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("p*.png"))) < 2:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run finished before the signal")
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert stopped_in < 10
    line = " ".join(err.split())
    assert "stopped: " in line and " of 60 done; run the same command to resume" in line and "Aborted" not in line
    done = int(line.split("stopped: ")[1].split(" of ")[0])
    report = json.loads((out / "archivecolor-report.json").read_text())
    assert report["summary"]["done"] == done
    assert len(list(out.glob("p*.png"))) >= done and done < 60
    assert not list(out.glob(".*.part"))
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("p*.png"))) == 60


def test_the_report_says_what_made_the_colours(tmp_path, tiny_weights):
    """An archive must be able to say which model coloured a master, and how."""
    from archivecolor import __version__
    from archivecolor.files import file_sha256

    src = tmp_path / "scans"
    write_rgb(src / "a.png", synthetic_photo(np.random.default_rng(5), 48))
    result = _run(src, tmp_path / "out", tiny_weights, "--render-size", "64", "--saturation", "1.2", "--ab-upsampling", "guided")
    assert result.exit_code == 0, result.output
    made = json.loads((tmp_path / "out" / "archivecolor-report.json").read_text())["made_with"]
    assert made["archivecolor"] == __version__
    assert made["weights"] == str(tiny_weights) and made["weights_sha256"] == file_sha256(tiny_weights)
    assert (made["render_size"], made["saturation"], made["ab_upsampling"], made["hints_used"]) == (64, 1.2, "guided", 0)
    assert made["encoder"] == "unet" and made["hint_channels"] == 0


def test_the_sheet_labels_each_pair_and_packs_portrait_and_landscape_pictures_without_holes():
    from PIL import Image
    import io

    from archivecolor.sheet import LABEL_HEIGHT, SHEET_THUMB_HEIGHT, SHEET_WIDTH, sheet_bytes

    def pair(width, name):
        grey = np.full((SHEET_THUMB_HEIGHT, width, 3), 128, np.uint8)
        return grey, np.full_like(grey, 200), name

    # 8 portrait pairs (2 × 107 px) and 4 landscape ones (2 × 240 px): a grid sized for the widest
    # pair would need 12 / 2 = 6 rows; packed rows need 4
    pairs = [pair(107, f"p{i}.tif") for i in range(8)] + [pair(240, f"l{i}.tif") for i in range(4)]
    sheet = Image.open(io.BytesIO(sheet_bytes(pairs, "title")))
    rows = (sheet.height - 26 - 8) // (SHEET_THUMB_HEIGHT + LABEL_HEIGHT + 8)
    assert rows == 4 and sheet.width <= SHEET_WIDTH + 8
    # the label strip under the first pair holds dark text pixels (its name and "grey | colorized")
    strip = np.asarray(sheet)[26 + 8 + SHEET_THUMB_HEIGHT : 26 + 8 + SHEET_THUMB_HEIGHT + LABEL_HEIGHT, 8:200]
    assert (strip.min(axis=2) < 128).sum() > 50


@pytest.mark.parametrize("code", ["EPERM", "EACCES", "EROFS"])
def test_an_output_folder_where_no_file_can_be_created_stops_on_one_line(tmp_path, tiny_weights, monkeypatch, code):
    """chattr +i (EPERM on every create), a permission (EACCES), a read-only mount (EROFS): the run
    stops before reading a picture, on one line saying what to do, and the exit code says so."""
    import errno

    import archivecolor.folder as folder_module

    def refuse(folder, *args, **kwargs):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(folder / ".archivecolor.lock"))

    monkeypatch.setattr(folder_module, "hold_folder", refuse)
    src = tmp_path / "scans"
    write_rgb(src / "a.png", synthetic_photo(np.random.default_rng(6), 48))
    result = _run(src, tmp_path / "out", tiny_weights)
    assert result.exit_code == 1
    assert f"stopped: no file can be created in {tmp_path / 'out'}" in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.output.count("\n") <= 3


def _damaged_stills(folder: Path) -> dict:
    """Broken pictures whose decoding libraries used to print on stderr, naming no file
    ('libpng error: IHDR: CRC error', 'Corrupt JPEG data: …', '<TiffTag.fromfile> raised …'),
    or whose reason was a library's own text (LIBDEFLATE_BAD_DATA, OpenCV assertions)."""
    import cv2
    from io import BytesIO

    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    png = bytearray(cv2.imencode(".png", rgb)[1].tobytes())
    jpeg = cv2.imencode(".jpg", rgb)[1].tobytes()
    crc = bytearray(png)
    crc[29] ^= 0xFF  # IHDR's CRC
    bad_type = bytearray(png)
    bad_type[25] = 7  # colour type 7 (its CRC fixed below)
    bad_type[29:33] = struct.pack(">I", zlib.crc32(bytes(bad_type[12:29])))
    zeroed_jpeg = bytearray(jpeg)
    zeroed_jpeg[200:260] = bytes(60)
    buffer = BytesIO()
    Image.fromarray(rgb).save(buffer, "TIFF", compression="tiff_deflate")
    zeroed_tiff = bytearray(buffer.getvalue())
    zeroed_tiff[20:80] = bytes(60)
    # a writer's bug rather than storage damage: image data cut short, chunk checksums computed over it
    idat = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[idat : idat + 4])[0]
    cut = bytes(png[idat + 8 : idat + 8 + length // 2])
    short = png[:idat] + struct.pack(">I", len(cut)) + b"IDAT" + cut + struct.pack(">I", zlib.crc32(b"IDAT" + cut)) + png[idat + 12 + length :]
    files = {"crc.png": bytes(crc), "badtype.png": bytes(bad_type), "half.png": bytes(png[: len(png) // 2]), "short.png": bytes(short),
             "zeroed.jpg": bytes(zeroed_jpeg), "zeroed.tif": bytes(zeroed_tiff),
             "bad-tag.tif": b"II*\x00\x08\x00\x00\x00\x01\x00" + bytes(20), "good.png": bytes(png)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def test_damaged_pictures_get_one_line_each_in_our_words_and_no_library_lines(tmp_path, tiny_weights):
    import subprocess
    import sys

    _damaged_stills(tmp_path / "scans")
    run = subprocess.run([sys.executable, "-m", "archivecolor", "folder", str(tmp_path / "scans"), "--out", str(tmp_path / "out"),
                          "--weights", str(tiny_weights), "--render-size", "64"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    named = {line.split("'")[1]: line for line in errors}
    assert set(named) == {"crc.png", "badtype.png", "half.png", "short.png", "zeroed.tif", "bad-tag.tif"}, run.stderr
    assert "checksum of its IHDR chunk" in named["crc.png"] and "impossible header" in named["badtype.png"]
    assert "truncated PNG" in named["half.png"] and "compressed data is damaged" in named["zeroed.tif"]
    assert "damaged PNG (its image data" in named["short.png"]
    for stray in ("libpng", "Corrupt JPEG", "TiffTag", "OpenCV", "[ERROR", "[ WARN", "LIBDEFLATE", "libdeflate", "Traceback"):
        assert stray not in run.stderr, stray
    report = json.loads((tmp_path / "out" / "archivecolor-report.json").read_text())
    assert {f["source"].rsplit("/", 1)[-1]: f["status"] for f in report["files"]}["zeroed.jpg"] == "done"  # decoded as far as it goes
