"""Image sequences (a film scanner's numbered frames): colorized as a film, frame by frame, resumable."""

import hashlib

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from archivecolor.backends import open_backend
from archivecolor.cli import main
from archivecolor.colorizer import Colorizer
from archivecolor.imageio import PROVENANCE, read_stills
from archivecolor.video.config import VideoConfig
from archivecolor.video.sequence import colorize_sequence, find_sequence
from archivecolor.video.smooth import SmoothingConfig

from conftest import disk_that_fills


def scan_frames(folder, count=12, h=40, w=56, name="reel1_{:06d}.tif", start=1):
    """A 16-bit grey pan across a textured scene, one TIFF per frame, as film scanners write."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    scene = (rng.random((h, w * 3)) * 0.4 + np.linspace(0.2, 0.6, w * 3)[None]) * 65535
    for i in range(count):
        tifffile.imwrite(folder / name.format(start + i), scene[:, 2 * i : 2 * i + w].astype(np.uint16))
    return folder


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer(open_backend("torch", tiny_weights, device="cpu").backend, render_size=64)


def tree_hashes(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_a_folder_of_numbered_frames_is_found_in_order_with_its_gaps(tmp_path):
    reel = scan_frames(tmp_path / "reel", count=3, name="reel_{:04d}.tif", start=8)
    scan_frames(reel, count=2, name="reel_{:04d}.tif", start=13)  # 11 and 12 missing
    (reel / "notes.txt").write_text("scanned 2026")
    (reel / "slate.tif").write_bytes((reel / "reel_0008.tif").read_bytes())  # not a numbered frame
    sequence = find_sequence(reel)
    assert [p.name for p in sequence.frames] == ["reel_0008.tif", "reel_0009.tif", "reel_0010.tif", "reel_0013.tif", "reel_0014.tif"]
    assert sequence.gaps == [(11, 12)] and "11–12" in sequence.gaps_line() and sequence.others == 1  # the slate
    assert find_sequence(tmp_path) is None  # no frames directly in it
    unpadded = scan_frames(tmp_path / "export", count=12, name="frame_{}.tif", start=1)  # frame_1 … frame_12
    assert [p.name for p in find_sequence(unpadded).frames][8:10] == ["frame_9.tif", "frame_10.tif"]


def test_video_colorizes_a_sequence_into_frames_of_the_same_depth_and_names(tmp_path, tiny_weights):
    reel = scan_frames(tmp_path / "reel1")
    before = tree_hashes(reel)
    result = CliRunner().invoke(main, ["video", str(reel), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "reel1-colorized"
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    frame = tifffile.TiffFile(out / "reel1_000005.tif").pages[0]
    assert frame.dtype == np.uint16 and frame.shape == (40, 56, 3) and frame.software.startswith(PROVENANCE + ": weights ")
    assert tree_hashes(reel) == before
    assert f"{reel} → {out}/" in result.output


def test_smoothing_steadies_the_colour_of_a_sequence(tmp_path, colorizer):
    reel = scan_frames(tmp_path / "reel", count=16)
    sequence = find_sequence(reel)
    outputs = {}
    for mode in ("none", "ema"):
        config = VideoConfig(batch_size=4, smoothing=SmoothingConfig(mode=mode, strength=0.8))
        result = colorize_sequence(sequence, tmp_path / mode, colorizer, config)
        assert result.frames == 16 and not result.failed
        frames = [read_stills(p)[0].pixels.astype(np.float64) for p in sorted((tmp_path / mode).glob("*.tif"))]
        outputs[mode] = np.mean([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])
    assert outputs["ema"] < outputs["none"]  # less frame-to-frame change: steadier colour


class ColourfulBackend:
    """A stand-in network whose colour is strong and follows the picture (a tiny random one's is
    near grey, so a resume that forgot to prime its smoothing would pass unseen)."""

    name, size_multiple, hint_channels = "colourful stand-in", 16, 0

    def run(self, l_net, hints=None):
        return np.concatenate([0.5 * np.sin(6 * l_net), 0.5 * np.cos(5 * l_net)], axis=1).astype(np.float32)


def test_a_rerun_continues_after_the_last_frame_with_the_colour_it_had(tmp_path):
    """The resumed frames' smoothing is primed on the frames before them, so they come out as one
    pass made them; without the priming, the first ones would take the raw colour (this fails)."""
    colorizer = Colorizer(ColourfulBackend(), render_size=64)
    reel = scan_frames(tmp_path / "reel", count=20)
    sequence = find_sequence(reel)
    config = VideoConfig(batch_size=4, smoothing=SmoothingConfig(mode="ema", strength=0.9))
    colorize_sequence(sequence, tmp_path / "once", colorizer, config)
    colorize_sequence(sequence, tmp_path / "twice", colorizer, config)
    for frame in sorted((tmp_path / "twice").glob("*.tif"))[13:]:  # as if killed after frame 13
        frame.unlink()
    result = colorize_sequence(sequence, tmp_path / "twice", colorizer, config)
    assert result.already_done == 13 and result.frames == 7
    for name in sorted(p.name for p in (tmp_path / "once").iterdir()):
        a = read_stills(tmp_path / "once" / name)[0].pixels.astype(int)
        b = read_stills(tmp_path / "twice" / name)[0].pixels.astype(int)
        assert np.abs(a - b).max() <= 257, name  # primed smoothing: within one 8-bit level of the one-pass colour


def test_a_bad_frame_is_named_and_the_rest_go_on(tmp_path, tiny_weights):
    reel = scan_frames(tmp_path / "reel", count=10)
    (reel / "reel1_000004.tif").write_bytes((reel / "reel1_000004.tif").read_bytes()[:200])  # cut off in a copy
    runner = CliRunner()
    result = runner.invoke(main, ["video", str(reel), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1
    assert "error: " in result.output and "reel1_000004.tif" in result.output and "failed" in result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 9 and "reel1_000004.tif" not in written
    plan = runner.invoke(main, ["video", str(reel), "--out", str(tmp_path / "out"), "--dry-run"])
    assert plan.exit_code == 0 and "a sequence of 10 frames" in plan.output and "9 already done" in plan.output


def test_a_folder_of_reels_colours_each_and_a_rerun_leaves_its_outputs_alone(tmp_path, tiny_weights):
    scans = tmp_path / "scans"
    scan_frames(scans / "reel1", count=4)
    scan_frames(scans / "reel2", count=5, name="r2_{:05d}.tif")
    args = ["video", str(scans), "--weights", str(tiny_weights), "--render-size", "64"]
    assert CliRunner().invoke(main, args).exit_code == 0
    # beside the folder given, never inside it (a later run on scans/ must not meet its own outputs)
    out = tmp_path / "scans-colorized"
    assert len(list((out / "reel1").iterdir())) == 4 and len(list((out / "reel2").iterdir())) == 5
    assert sorted(p.name for p in scans.iterdir()) == ["reel1", "reel2"]
    again = CliRunner().invoke(main, args + ["--dry-run"])
    assert "4 already done" in again.output and "5 already done" in again.output


def test_a_full_disk_stops_a_sequence_and_a_rerun_finishes_it(tmp_path, colorizer, monkeypatch):
    import archivecolor.stills as stills_module
    from archivecolor.files import OutputUnwritable

    reel = scan_frames(tmp_path / "reel", count=12)
    real_write = stills_module.atomic_write_bytes
    monkeypatch.setattr(stills_module, "atomic_write_bytes", disk_that_fills(5, real_write))
    with pytest.raises(OutputUnwritable, match="No space left on device"):
        colorize_sequence(find_sequence(reel), tmp_path / "out", colorizer, VideoConfig(batch_size=2), jobs=1)
    monkeypatch.setattr(stills_module, "atomic_write_bytes", real_write)
    result = colorize_sequence(find_sequence(reel), tmp_path / "out", colorizer, VideoConfig(batch_size=2), jobs=1)
    assert result.already_done == 5 and result.frames == 7 and len(list((tmp_path / "out").iterdir())) == 12


def test_a_sequence_sheet_goes_beside_its_output_folder(tmp_path, tiny_weights):
    reel = scan_frames(tmp_path / "reel1", count=6)
    result = CliRunner().invoke(main, ["video", str(reel), "--sheet", "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reel1-colorized-sheet.jpg").stat().st_size > 0
    assert len(list((tmp_path / "reel1-colorized").iterdir())) == 6  # the sheet is not among the frames


def test_folder_points_a_scanned_reel_to_video_and_a_named_frame_to_its_reel(tmp_path):
    archive = tmp_path / "archive"
    scan_frames(archive / "reel7", count=24, name="reel7_{:07d}.tif")  # film scanners' long frame numbers
    scan_frames(archive / "family", count=30, name="IMG_{:04d}.tif")  # a camera's: photos, not a film
    plan = CliRunner().invoke(main, ["folder", str(archive), "--dry-run"])
    assert plan.output.count("hint: ") == 1 and f"`archivecolor video {archive / 'reel7'}`" in plan.output
    frame = archive / "reel7" / "reel7_0000003.tif"
    result = CliRunner().invoke(main, ["video", str(frame), "--dry-run"])
    assert result.exit_code == 1 and f"one frame of {archive / 'reel7'} (24 frames)" in result.output


def test_a_reel_resumed_with_other_settings_is_refused_not_mixed(tmp_path, tiny_weights):
    """Frames written with one look and the rest with another would change colour mid-reel."""
    reel = scan_frames(tmp_path / "reel", count=8)
    out = tmp_path / "out"
    args = ["video", str(reel), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"]
    assert CliRunner().invoke(main, args).exit_code == 0
    for frame in sorted(out.iterdir())[5:]:  # as if killed after frame 5
        frame.unlink()
    kept = tree_hashes(out)
    other = CliRunner().invoke(main, args + ["--saturation", "0.5"])
    assert other.exit_code == 1 and "coloured with other settings" in " ".join(other.output.split())
    assert tree_hashes(out) == kept  # nothing written, nothing removed
    same = CliRunner().invoke(main, args)
    assert same.exit_code == 0 and len(list(out.iterdir())) == 8
    redone = CliRunner().invoke(main, args + ["--saturation", "0.5", "--overwrite"])
    assert redone.exit_code == 0 and len(list(out.iterdir())) == 8
    assert all(tree_hashes(out)[name] != digest for name, digest in kept.items())  # every frame redone in the new look


def preview_frames(path):
    """(frames, rate, (width, height)) of a preview film, decoded by FFmpeg."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return frames, stream.average_rate, (stream.codec_context.width, stream.codec_context.height)


def test_a_preview_film_holds_every_frame_written_resumed_runs_included(tmp_path, tiny_weights):
    reel = scan_frames(tmp_path / "reel1", count=10, h=41, w=57)  # odd sides: 4:2:0 needs even ones
    args = ["video", str(reel), "--preview", "--weights", str(tiny_weights), "--render-size", "64"]
    assert CliRunner().invoke(main, args).exit_code == 0
    preview = tmp_path / "reel1-colorized-preview.mp4"
    frames, rate, size = preview_frames(preview)
    assert len(frames) == 10 and rate == 24 and size == (56, 40)
    last = read_stills(tmp_path / "reel1-colorized" / "reel1_000010.tif")[0].pixels
    assert np.abs(frames[-1].astype(float).mean() - last.mean() / 257) < 3  # the 16-bit frame's tones, in 8 bits
    white = np.full((41, 57, 3), 65535, np.uint16)
    tifffile.imwrite(tmp_path / "reel1-colorized" / "reel1_000005.tif", white, photometric="rgb")  # marks its place
    (tmp_path / "reel1-colorized" / "reel1_000003.tif").unlink()  # as if the run had stopped there
    result = CliRunner().invoke(main, args + ["--preview-fps", "18"])
    assert result.exit_code == 0, result.output
    frames, rate, _ = preview_frames(preview)
    assert len(frames) == 10 and rate == 18  # remade whole, from the frames on disk: both runs'
    assert [i for i, frame in enumerate(frames) if frame.mean() > 240] == [4]  # in frame-number order
    assert len(list(tmp_path.glob(".*.part"))) == 0 and len(list((tmp_path / "reel1-colorized").iterdir())) == 10


def test_a_preview_takes_a_dpx_reels_recorded_frame_rate(tmp_path):
    from archivecolor.dpx import frame_rate as scanned_frame_rate

    from test_dpx import grey_ramp, with_film_headers, write_dpx

    write_dpx(tmp_path / "f.dpx", grey_ramp(), "gray16le", "gray16be")
    assert scanned_frame_rate(tmp_path / "f.dpx") is None  # FFmpeg writes no film header
    data = bytearray(with_film_headers((tmp_path / "f.dpx").read_bytes(), 0))
    assert scanned_frame_rate_of(tmp_path, data) is None  # the header's rate undefined (all bits set)
    data[1724:1728] = np.array([25.0], ">f4").tobytes()
    assert scanned_frame_rate_of(tmp_path, data) == 25.0


def scanned_frame_rate_of(folder, data: bytes):
    from archivecolor.dpx import frame_rate as scanned_frame_rate

    (folder / "g.dpx").write_bytes(bytes(data))
    return scanned_frame_rate(folder / "g.dpx")


def test_a_preview_that_cannot_be_made_is_one_line_and_the_frames_stay(tmp_path, tiny_weights):
    reel = scan_frames(tmp_path / "reel1", count=3)
    result = CliRunner().invoke(main, ["video", str(reel), "--preview", "--ffmpeg", str(tmp_path / "no-ffmpeg"),
                                       "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1
    assert "error: " in result.output and "reel1-colorized-preview.mp4" in result.output
    assert not (tmp_path / "reel1-colorized-preview.mp4").exists() and not list(tmp_path.glob(".*.part"))
    assert len(list((tmp_path / "reel1-colorized").iterdir())) == 3


def test_numbered_photos_are_no_reel_for_video_and_a_single_still_points_to_folder(tmp_path, tiny_weights):
    """A box of photos numbered 01-08 (a camera's or a scanner's batch names) is not a film: `video`
    says to use `folder`, plans nothing, and writes nothing inside the folder it was given."""
    import cv2

    scans = tmp_path / "scans"
    for box in ("box1", "box2"):
        for i in range(1, 9):
            (scans / box).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(scans / box / f"kodim{i:02d}.png"), np.full((32, 48), 40 * (i % 5), np.uint8))
    dry = CliRunner().invoke(main, ["video", str(scans), "--dry-run", "--weights", str(tiny_weights)])
    assert dry.exit_code == 1
    line = " ".join(dry.output.split())
    assert "8 numbered pictures, not a film scanner's reel" in line and f"`archivecolor folder {scans / 'box1'}`" in line
    one = CliRunner().invoke(main, ["video", str(scans / "box1" / "kodim04.png"), "--weights", str(tiny_weights)])
    assert one.exit_code == 1 and "not a film: colorize it with `archivecolor folder`" in " ".join(one.output.split())
    assert "one frame of" not in one.output
    assert sorted(p.name for p in scans.iterdir()) == ["box1", "box2"]


def test_a_reels_end_is_decided_in_the_library_for_every_caller(tmp_path, colorizer, monkeypatch):
    """colorize_reel says how a reel ended, as colorize_films does for films: done; failed with
    the count of frames that failed; stopped when nothing more can be written (the disk is full)."""
    from archivecolor import stills as stills_module
    from archivecolor.video.sequence import colorize_reel

    reel = scan_frames(tmp_path / "reel", count=6)
    done = colorize_reel(find_sequence(reel), tmp_path / "out", colorizer, VideoConfig(batch_size=2), jobs=1)
    assert (done.status, done.reason, done.result.frames) == ("done", "", 6)
    broken = scan_frames(tmp_path / "broken", count=6)
    (broken / "reel1_000003.tif").write_bytes(b"II*\x00 not a TIFF")
    failed = colorize_reel(find_sequence(broken), tmp_path / "out2", colorizer, VideoConfig(batch_size=2), jobs=1)
    assert (failed.status, failed.reason, failed.result.frames) == ("failed", "1 frame(s) failed", 5)
    monkeypatch.setattr(stills_module, "atomic_write_bytes", disk_that_fills(2, stills_module.atomic_write_bytes))
    stopped = colorize_reel(find_sequence(reel), tmp_path / "out3", colorizer, VideoConfig(batch_size=2), jobs=1)
    assert stopped.status == "stopped" and "No space left on device" in stopped.reason and stopped.result is None
