"""`archivecolor folder` end to end: trees, formats, resume after a kill, bad files, exit codes."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from archivecolor.cli import main
from archivecolor.imageio import PROVENANCE, read_stills
from archivecolor.lab import srgb_to_lab

from conftest import SHARED_DATA, disk_that_fills, synthetic_photo, write_rgb

BSD100 = SHARED_DATA / "eval" / "bsd100"


def grey_of(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def tree_hashes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def real_photo(i: int, size=(120, 80)) -> np.ndarray:
    files = sorted(BSD100.glob("*.png"))
    if files:
        rgb = cv2.cvtColor(cv2.imread(str(files[i % len(files)])), cv2.COLOR_BGR2RGB)
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return cv2.resize(synthetic_photo(np.random.default_rng(i), 64), size)


@pytest.fixture
def archive(tmp_path):
    """A scan archive as people have them: nested folders, several formats, some bad files."""
    src = tmp_path / "scans"
    (src / "1920s" / "family").mkdir(parents=True)
    (src / "negatives").mkdir()
    cv2.imwrite(str(src / "1920s" / "portrait.jpg"), grey_of(real_photo(0)))
    cv2.imwrite(str(src / "1920s" / "family" / "picnic.png"), grey_of(real_photo(1)))
    cv2.imwrite(str(src / "negatives" / "deep16.png"), grey_of(real_photo(2)).astype(np.uint16) * 257)
    tifffile.imwrite(src / "negatives" / "pages.tif", np.stack([grey_of(real_photo(3)), grey_of(real_photo(4))]), photometric="minisblack")
    rgba = np.dstack([np.dstack([grey_of(real_photo(5))] * 3), np.full((80, 120), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "logo.png")
    Image.fromarray(grey_of(real_photo(6))).save(src / "it's \"quoted\".webp")
    write_rgb(src / "already-colour.jpg", real_photo(7))
    return src


def run_cli(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result


def test_folder_mirrors_the_tree_and_keeps_every_kind(archive, tiny_weights, tmp_path):
    before = tree_hashes(archive)
    out = tmp_path / "out"
    result = run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64", "--sheet"])
    assert result.exit_code == 0, result.output
    assert tree_hashes(archive) == before  # sources untouched
    expected = {"1920s/portrait.jpg", "1920s/family/picnic.png", "negatives/deep16.png", "negatives/pages.tif",
                "logo.png", "it's \"quoted\".webp", "already-colour.jpg"}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert expected <= written
    assert {"archivecolor-report.json", "before-after.jpg"} <= written
    assert f"before/after sheet: {out / 'before-after.jpg'}" in " ".join(result.output.split())

    deep = read_stills(out / "negatives" / "deep16.png")[0]
    assert deep.pixels.dtype == np.uint16 and deep.pixels.shape == (80, 120, 3)
    pages = read_stills(out / "negatives" / "pages.tif")
    assert len(pages) == 2 and all(p.pixels.shape == (80, 120, 3) for p in pages)
    logo = read_stills(out / "logo.png")[0]
    assert logo.pixels.shape == (80, 120, 4) and np.all(logo.pixels[..., 3] == 200)
    portrait = read_stills(out / "1920s" / "portrait.jpg")[0]
    assert portrait.pixels.shape == (80, 120, 3)
    # full-resolution luminance is the source's (up to JPEG re-encoding)
    src_L = srgb_to_lab(np.dstack([grey_of(real_photo(1))] * 3))[..., 0]
    out_L = srgb_to_lab(read_stills(out / "1920s" / "family" / "picnic.png")[0].pixels)[..., 0]
    assert np.abs(out_L - src_L).mean() < 1.0
    with Image.open(out / "1920s" / "family" / "picnic.png") as im:
        assert im.getexif().get(0x0131).startswith(PROVENANCE + ": weights ")
    report = json.loads((out / "archivecolor-report.json").read_text())
    assert report["summary"] == {"done": 7, "skipped": 0, "failed": 0}
    assert report["images"] == 8  # the two-page TIFF counts twice


def test_rerun_skips_done_and_overwrite_redoes(archive, tiny_weights, tmp_path):
    out = tmp_path / "out"
    args = ["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]
    assert run_cli(args).exit_code == 0
    stamp = (out / "logo.png").stat().st_mtime_ns
    assert run_cli(args).exit_code == 0
    report = json.loads((out / "archivecolor-report.json").read_text())
    assert report["summary"]["skipped"] == 7 and (out / "logo.png").stat().st_mtime_ns == stamp
    assert run_cli(args + ["--overwrite"]).exit_code == 0
    assert json.loads((out / "archivecolor-report.json").read_text())["summary"]["done"] == 7


def test_skip_color_and_format_option(archive, tiny_weights, tmp_path):
    (archive / "negatives" / "pages.tif").unlink()  # PNG holds one page (next test)
    out = tmp_path / "out"
    result = run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64",
                      "--skip-color", "--format", "png"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "archivecolor-report.json").read_text())
    skipped = [f["source"] for f in report["files"] if f["status"] == "skipped"]
    assert skipped == ["already-colour.jpg"]
    assert (out / "1920s" / "portrait.png").exists() and not (out / "1920s" / "portrait.jpg").exists()


def test_a_multipage_tiff_is_refused_for_a_one_picture_format_never_cut_to_its_first_page(archive, tiny_weights, tmp_path):
    out = tmp_path / "out"
    args = ["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64", "--format", "png"]
    dry = run_cli(args + ["--dry-run"])
    assert dry.exit_code == 1 and "pages.tif" in dry.output and "2 pages" in dry.output
    result = run_cli(args)
    assert result.exit_code == 1
    report = json.loads((out / "archivecolor-report.json").read_text())
    (pages,) = [f for f in report["files"] if f["source"] == "negatives/pages.tif"]
    assert pages["status"] == "failed" and "2 pages" in pages["reason"] and "TIFF" in pages["reason"]
    assert not (out / "negatives" / "pages.png").exists()
    assert report["summary"]["done"] == 6  # the other six went on


def test_a_sixteen_bit_jpeg2000_master_gives_a_lossless_sixteen_bit_colour_jp2(tiny_weights, tmp_path):
    src, out = tmp_path / "masters", tmp_path / "out"
    src.mkdir()
    grey16 = grey_of(real_photo(3)).astype(np.uint16) * 257
    ok, data = cv2.imencode(".jp2", grey16, [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 1000])
    (src / "neg-0042.jp2").write_bytes(data.tobytes())
    before = tree_hashes(src)
    result = run_cli(["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert tree_hashes(src) == before
    (still,) = read_stills(out / "neg-0042.jp2")
    assert still.pixels.shape == (80, 120, 3) and still.pixels.dtype == np.uint16
    assert PROVENANCE.encode() in still.metadata.xmp
    # the colour keeps the master's luminance: L of the output is L of the source
    L_out = srgb_to_lab(still.pixels.astype(np.float32) / 65535)[..., 0]
    L_src = srgb_to_lab(np.repeat(grey16[..., None], 3, axis=2).astype(np.float32) / 65535)[..., 0]
    assert np.abs(L_out - L_src).mean() < 0.5


def test_hidden_and_system_files_are_left_out_and_counted(archive, tiny_weights, tmp_path):
    (archive / "1920s" / "._portrait.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (archive / "1920s" / "@eaDir" / "portrait.jpg").mkdir(parents=True)
    cv2.imwrite(str(archive / "1920s" / "@eaDir" / "portrait.jpg" / "SYNOPHOTO_THUMB_S.jpg"), real_photo(0))
    (archive / "__MACOSX").mkdir()
    (archive / "__MACOSX" / "logo.png").write_bytes(b"junk")
    for name in ("finding-aid.pdf", "box-list.pdf", "README"):  # the archive's other files: counted, not read
        (archive / name).write_bytes(b"not a picture")
    (archive / "from-the-web.jfif").write_bytes(cv2.imencode(".jpg", grey_of(real_photo(8)))[1].tobytes())  # JPEG, other name
    (archive / "1920s" / "back-up").symlink_to(archive)  # a link to a folder (here a loop): named, not followed
    out = tmp_path / "out"
    result = run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert "left out 3 hidden or system" in result.output
    assert "left as they are: 2 × .pdf, 1 × (no suffix), 1 × link to a folder (not followed)" in result.output
    report = json.loads((out / "archivecolor-report.json").read_text())
    assert report["hidden_or_system_left_out"] == 3 and report["summary"] == {"done": 8, "skipped": 0, "failed": 0}
    assert report["other_files_not_read"].endswith("2 × .pdf, 1 × (no suffix), 1 × link to a folder (not followed)") and (out / "from-the-web.jfif").exists()
    assert not (out / "1920s" / "@eaDir").exists() and not (out / "__MACOSX").exists()


def test_two_files_that_format_gives_one_name_are_never_written_over_each_other(tiny_weights, tmp_path):
    src, out = tmp_path / "scans", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "plate.jpg"), grey_of(real_photo(0)))
    cv2.imwrite(str(src / "plate.tif"), grey_of(real_photo(1)))
    args = ["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64", "--format", "png"]
    result = run_cli(args)
    assert result.exit_code == 1
    report = {f["source"]: f for f in json.loads((out / "archivecolor-report.json").read_text())["files"]}
    assert report["plate.jpg"]["status"] == "done"
    assert report["plate.tif"]["status"] == "failed" and "also that of plate.jpg" in report["plate.tif"]["reason"]
    assert run_cli(args + ["--dry-run"]).exit_code == 1  # the dry run says so too


def test_scanner_netpbm_grey_and_bilevel_come_out_as_colour_ppm(tiny_weights, tmp_path):
    """SANE's scanimage writes PGM/PBM: grey-only names, so their colour output is .ppm, 16-bit kept."""
    src, out = tmp_path / "scans", tmp_path / "out"
    src.mkdir()
    grey16 = grey_of(real_photo(4)).astype(np.uint16) * 257
    cv2.imwrite(str(src / "scan.pgm"), grey16)
    cv2.imwrite(str(src / "fax.pbm"), np.where(grey_of(real_photo(5)) > 128, 255, 0).astype(np.uint8))
    result = run_cli(["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["archivecolor-report.json", "fax.ppm", "scan.ppm"]
    (still,) = read_stills(out / "scan.ppm")
    assert still.pixels.shape == (80, 120, 3) and still.pixels.dtype == np.uint16
    assert f"# {PROVENANCE}".encode() in (out / "scan.ppm").read_bytes()[:100]


def test_a_gif_comes_out_as_png_and_an_animated_one_is_named_not_cut(tiny_weights, tmp_path):
    src, out = tmp_path / "web", tmp_path / "out"
    src.mkdir()
    grey = grey_of(real_photo(6))
    Image.fromarray(grey).save(src / "portrait.gif")
    Image.fromarray(grey).save(src / "flicker.gif", save_all=True, append_images=[Image.fromarray(255 - grey)])
    args = ["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]
    dry = run_cli(args + ["--dry-run"])
    assert dry.exit_code == 1 and "animated GIF (2 frames)" in dry.output
    result = run_cli(args)
    assert result.exit_code == 1 and "flicker.gif" in result.output
    (still,) = read_stills(out / "portrait.png")  # GIF's 256 colours cannot hold the colour picture: PNG
    assert still.pixels.shape == (80, 120, 3) and not (out / "flicker.png").exists()


def test_an_animated_png_is_refused_never_cut_to_its_first_frame(tiny_weights, tmp_path):
    src, out = tmp_path / "web", tmp_path / "out"
    src.mkdir()
    grey = grey_of(real_photo(7))
    Image.fromarray(grey).save(src / "blink.png", save_all=True, append_images=[Image.fromarray(255 - grey)])
    args = ["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]
    assert "animated PNG (2 frames)" in run_cli(args + ["--dry-run"]).output
    result = run_cli(args)
    assert result.exit_code == 1 and "animated PNG (2 frames)" in result.output and not (out / "blink.png").exists()


def test_files_are_decoded_by_content_whatever_their_name_says(tiny_weights, tmp_path):
    src, out = tmp_path / "scans", tmp_path / "out"
    src.mkdir()
    ok, png = cv2.imencode(".png", grey_of(real_photo(1)))
    assert b"\xff\xd9" not in png.tobytes()[-1024:]  # no JPEG end marker: read by name, it looked "truncated"
    (src / "really-a-png.jpg").write_bytes(png.tobytes())
    tifffile.imwrite(src / "really-a-tiff.png", grey_of(real_photo(2)), photometric="minisblack")
    result = run_cli(["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    # each output is the format its name says, so it opens as what it claims to be
    assert (out / "really-a-png.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert (out / "really-a-tiff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_stills(out / "really-a-tiff.png")[0].pixels.shape == (80, 120, 3)


def test_bad_files_are_named_the_rest_succeeds_and_exit_code_is_1(archive, tiny_weights, tmp_path):
    (archive / "zero.jpg").write_bytes(b"")
    ok, data = cv2.imencode(".jpg", real_photo(8))
    (archive / "cut.jpg").write_bytes(data.tobytes()[:300])
    cv2.imwrite(str(archive / "dot.png"), np.zeros((1, 1), np.uint8))
    (archive / "dangling.png").symlink_to(archive / "nowhere.png")
    odd = os.fsencode(str(archive)) + b"/caf\xe9-latin1.png"  # a name that is not UTF-8
    with open(odd, "wb") as f:
        f.write(b"not an image")
    out = tmp_path / "out"
    result = run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1
    report = json.loads((out / "archivecolor-report.json").read_text())
    failed = {f["source"]: f["reason"] for f in report["files"] if f["status"] == "failed"}
    assert set(failed) == {"zero.jpg", "cut.jpg", "dot.png", "dangling.png", "caf\udce9-latin1.png"}
    assert "0 bytes" in failed["zero.jpg"] and "truncated" in failed["cut.jpg"] and "too small" in failed["dot.png"]
    assert report["summary"]["done"] == 7
    for name in ["zero.jpg", "cut.jpg", "dot.png"]:
        assert name in result.output  # one line each on the terminal


def test_dry_run_says_what_would_happen_and_writes_nothing(archive, tiny_weights, tmp_path):
    (archive / "zero.jpg").write_bytes(b"")
    (archive / "junk.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    (out / "1920s").mkdir(parents=True)
    (out / "1920s" / "portrait.jpg").write_bytes(b"finished earlier")
    sources, outputs = tree_hashes(archive), tree_hashes(out)
    result = run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--dry-run"])
    assert result.exit_code == 1  # two files would fail
    assert "dry run" in result.output and "zero.jpg" in result.output and "junk.png" in result.output
    row = [line for line in result.output.splitlines() if line.strip() and line.strip()[0].isdigit()][-1]
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[0] == "8" and cells[2:] == ["1", "0", "2"]  # to colorize, (megapixels), done, refused, unreadable
    assert tree_hashes(archive) == sources and tree_hashes(out) == outputs  # nothing written, not even the report
    archive.joinpath("zero.jpg").unlink()
    archive.joinpath("junk.png").unlink()
    assert run_cli(["folder", str(archive), "--out", str(out), "--weights", str(tiny_weights), "--dry-run"]).exit_code == 0


def test_output_inside_the_source_is_refused(archive, tiny_weights):
    result = CliRunner().invoke(main, ["folder", str(archive), "--out", str(archive / "out"), "--weights", str(tiny_weights)])
    assert result.exit_code != 0 and "inside the input folder" in result.output


def test_default_output_is_beside_the_input(archive, tiny_weights):
    result = run_cli(["folder", str(archive), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0
    assert (archive.parent / "scans-colorized" / "logo.png").exists()


def test_guided_upsampling_runs_end_to_end(archive, tiny_weights, tmp_path):
    result = run_cli(["folder", str(archive), "--out", str(tmp_path / "g"), "--weights", str(tiny_weights),
                      "--render-size", "64", "--ab-upsampling", "guided", "--backend", "onnx"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tmp_path, tiny_weights):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(160):
        cv2.imwrite(str(src / f"scan{i:03d}.jpg"), grey_of(real_photo(i, (400, 300))))
    clean = tmp_path / "clean"
    killed = tmp_path / "killed"
    base = [sys.executable, "-m", "archivecolor", "folder", str(src), "--weights", str(tiny_weights),
            "--render-size", "64", "--batch-size", "2", "--jobs", "1", "--ab-upsampling", "guided"]
    assert subprocess.run(base + ["--out", str(clean)], capture_output=True).returncode == 0

    proc = subprocess.Popen(base + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(killed.glob("scan*.jpg"))) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list(killed.glob("scan*.jpg"))
    assert 5 <= len(finished) < 160, "the kill did not land mid-run"
    for path in finished:  # whatever carries a final name is complete
        assert read_stills(path)[0].pixels.shape == (300, 400, 3)

    assert subprocess.run(base + ["--out", str(killed)], capture_output=True).returncode == 0
    assert not list(killed.rglob("*.part"))
    for path in sorted(clean.glob("scan*.jpg")):
        a = read_stills(path)[0].pixels.astype(int)
        b = read_stills(killed / path.name)[0].pixels.astype(int)
        assert np.abs(a - b).max() <= 2, path.name
    report = json.loads((killed / "archivecolor-report.json").read_text())
    assert report["summary"]["done"] + report["summary"]["skipped"] == 160 and report["summary"]["failed"] == 0


def test_a_single_picture_goes_where_a_run_on_its_folder_would_put_it(tmp_path, tiny_weights):
    scans = tmp_path / "scans"
    scans.mkdir()
    cv2.imwrite(str(scans / "a.jpg"), grey_of(real_photo(0)))
    cv2.imwrite(str(scans / "b.png"), grey_of(real_photo(1)))
    (scans / "notes.pdf").write_bytes(b"%PDF-1.4")
    before = tree_hashes(scans)
    args = ["--weights", str(tiny_weights), "--render-size", "64"]
    assert run_cli(["folder", str(scans / "a.jpg"), *args]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "scans-colorized").iterdir()) == ["a.jpg", "archivecolor-report.json"]
    result = run_cli(["folder", str(scans), *args])  # the folder's run finds it done
    assert result.exit_code == 0
    summary = json.loads((tmp_path / "scans-colorized" / "archivecolor-report.json").read_text())["summary"]
    assert summary == {"done": 1, "skipped": 1, "failed": 0}
    # an output folder beside the picture is fine; a file it cannot read fails by name, in the dry run too
    assert run_cli(["folder", str(scans / "b.png"), "--out", str(scans / "colour"), *args]).exit_code == 0
    assert (scans / "colour" / "b.png").exists()
    for extra in ([], ["--dry-run"]):
        result = run_cli(["folder", str(scans / "notes.pdf"), *args, *extra])
        assert result.exit_code == 1 and "notes.pdf" in result.output and "unsupported file type '.pdf'" in result.output
    assert {k: v for k, v in tree_hashes(scans).items() if not k.startswith("colour/")} == before
    # --out is a folder: a picture's name given as one is refused, before anything is made
    result = run_cli(["folder", str(scans / "a.jpg"), "--out", str(tmp_path / "result.jpg"), *args])
    assert result.exit_code == 1 and "--out names a folder" in result.output and not (tmp_path / "result.jpg").exists()


def test_metadata_survives_the_folder_pipeline(tmp_path, tiny_weights):
    src = tmp_path / "src"
    src.mkdir()
    icc = b"\x00\x00\x01\x00archive-icc\x00" + b"RGB " + bytes(range(256))  # an RGB profile (bytes 16-19)
    exif = Image.Exif()
    exif[0x010F] = "ScanCo"
    exif[0x0112] = 8  # stored sideways
    Image.fromarray(grey_of(real_photo(9))).save(src / "scan.jpg", exif=exif, icc_profile=icc, dpi=(1200, 1200), quality=95)
    out = tmp_path / "out"
    assert run_cli(["folder", str(src), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]).exit_code == 0
    with Image.open(out / "scan.jpg") as im:
        assert im.size == (80, 120)  # rotated upright
        assert im.info["icc_profile"] == icc
        assert im.info["dpi"] == pytest.approx((1200, 1200), abs=1)
        tags = im.getexif()
        assert tags[0x010F] == "ScanCo" and tags[0x0112] == 1 and tags[0x0131].startswith(PROVENANCE)


def test_a_full_disk_stops_the_run_instead_of_failing_every_file_and_a_rerun_resumes(tmp_path, tiny_weights, monkeypatch):
    import archivecolor.stills as stills_module

    src = tmp_path / "scans"
    src.mkdir()
    for i in range(12):
        cv2.imwrite(str(src / f"p{i:02d}.png"), grey_of(real_photo(i)))
    real_write = stills_module.atomic_write_bytes  # where every output picture is written
    monkeypatch.setattr(stills_module, "atomic_write_bytes", disk_that_fills(3, real_write))
    args = ["folder", str(src), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights), "--render-size", "64",
            "--jobs", "1", "--batch-size", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "run the same command again" in result.output
    assert result.output.count("error: ") < 6  # stopped at the first failures, not one line per remaining file
    assert not list((tmp_path / "out").glob(".*.part"))
    monkeypatch.setattr(stills_module, "atomic_write_bytes", real_write)  # room made
    assert run_cli(args).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == sorted(p.name for p in src.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_reported(tmp_path, tiny_weights):
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "ok.png"), grey_of(real_photo(0)))
    locked = src / "locked.png"
    cv2.imwrite(str(locked), grey_of(real_photo(1)))
    locked.chmod(0)
    result = run_cli(["folder", str(src), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1 and "permission denied" in result.output


def test_pixel_budget_bounds_what_is_held_and_every_file_still_finishes(tmp_path, tiny_weights, monkeypatch):
    """With a budget smaller than two images, files go through one at a time, all of them."""
    import archivecolor.folder as folder_module

    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        cv2.imwrite(str(src / f"s{i}.png"), grey_of(real_photo(i, (300, 200))))
    monkeypatch.setattr(folder_module, "PIXELS_IN_FLIGHT", 300 * 200 + 10)
    import threading

    held, peak, lock = [0], [0], threading.Lock()
    real_decode, real_write = folder_module.decode_file, folder_module.write_file

    def counting_decode(*args):
        item = real_decode(*args)
        with lock:
            held[0] += 1
            peak[0] = max(peak[0], held[0])
        return item

    def counting_write(*args):
        try:
            return real_write(*args)
        finally:
            with lock:
                held[0] -= 1

    monkeypatch.setattr(folder_module, "decode_file", counting_decode)
    monkeypatch.setattr(folder_module, "write_file", counting_write)
    result = run_cli(["folder", str(src), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("s*.png"))) == 5
    assert peak[0] == 1  # never two decoded images held at once


def test_saturation_scales_the_colour_and_zero_leaves_the_pictures_grey(colour_folder, tmp_path):
    """--saturation scales the predicted a*/b* (the shipped model: real colour)."""
    chroma = {}
    for saturation in ("1", "0.5", "0"):
        out = tmp_path / f"saturation-{saturation}"
        result = CliRunner().invoke(main, ["folder", str(colour_folder), "--out", str(out), "--render-size", "64", "--format", "png",
                                           "--saturation", saturation])
        assert result.exit_code == 0, result.output
        pictures = sorted(out.rglob("*.png"))
        assert len(pictures) == 16
        lab = [srgb_to_lab(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)) for p in pictures]
        chroma[saturation] = float(np.mean([np.hypot(x[..., 1], x[..., 2]).mean() for x in lab]))
    assert chroma["1"] > 3.0
    assert chroma["0.5"] == pytest.approx(0.5 * chroma["1"], rel=0.15)
    assert chroma["0"] < 1.0  # grey, but for 8-bit rounding


def test_progress_can_count_megapixels_for_mixed_sizes(tmp_path, tiny_weights):
    """on_pixels gives every file's pixels from its header (in the background), so a bar in
    megapixels can promise an honest ETA when one large scan follows many small ones."""
    import threading

    from archivecolor.backends import open_backend
    from archivecolor.colorizer import Colorizer
    from archivecolor.folder import FolderConfig, colorize_folder

    rng = np.random.default_rng(8)
    for i in range(4):
        write_rgb(tmp_path / "scans" / f"small{i}.png", synthetic_photo(rng, 48))
    write_rgb(tmp_path / "scans" / "zlarge.png", np.repeat(np.repeat(synthetic_photo(rng, 48), 8, 0), 8, 1))
    seen, done = {}, threading.Event()

    def on_pixels(per_file):
        seen.update(per_file)
        done.set()

    colorizer = Colorizer(open_backend("torch", tiny_weights, device="cpu").backend, render_size=64)
    report = colorize_folder(tmp_path / "scans", tmp_path / "out", colorizer, FolderConfig(), on_pixels=on_pixels)
    assert done.wait(10) and report.count("done") == 5
    assert seen == {**{f"small{i}.png": 48 * 48 for i in range(4)}, "zlarge.png": 384 * 384}
