"""`archivecolor video`: clips made here with ffmpeg, and the shared real footage desaturated."""

import hashlib
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from archivecolor.backends import open_backend
from archivecolor.cli import main
from archivecolor.colorizer import Colorizer
from archivecolor.imageio import PROVENANCE
from archivecolor.video.ffmpeg import VideoError, find_ffmpeg, probe
from archivecolor.video.config import VideoConfig
from archivecolor.video.film import colorize_video
from archivecolor.video.smooth import SmoothingConfig, TemporalSmoother
from archivecolor.video.temporal import TemporalMeter

from conftest import SHARED_DATA

FFMPEG = find_ffmpeg()


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def test_clip(tmp_path_factory) -> Path:
    """3 s of a test pattern at 30000/1001 fps with a 440 Hz tone, 160×120, made by ffmpeg."""
    path = tmp_path_factory.mktemp("clips") / "pattern.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30000/1001:duration=3",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-vf", "hue=s=0",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path))
    return path


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer(open_backend("torch", tiny_weights, device="cpu").backend, render_size=64)


def audio_hash(path: Path) -> str:
    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            h.update(frame.to_ndarray().tobytes())
    return h.hexdigest()


def stream_facts(path: Path) -> tuple:
    with av.open(str(path)) as c:
        n = sum(1 for _ in c.decode(video=0))
    info = probe(path)
    return n, info.rate, info.width, info.height, round(info.duration, 2)


def test_output_keeps_frames_rate_size_duration_and_audio(test_clip, colorizer, tmp_path):
    out = tmp_path / "colour.mp4"
    result = colorize_video(test_clip, out, colorizer, VideoConfig(batch_size=4))
    src_facts, out_facts = stream_facts(test_clip), stream_facts(out)
    assert src_facts == out_facts
    assert src_facts[1] == Fraction(30000, 1001)
    assert result.frames == src_facts[0]
    assert audio_hash(out) == audio_hash(test_clip)
    with av.open(str(out)) as c:
        tags = c.streams.video[0].codec_context
        assert int(tags.colorspace) == 6  # SD without tags: smpte170m (bt601)
    assert not list(tmp_path.glob(".*.part"))


def test_a_sheet_shows_frames_spread_over_the_film_beside_its_output(test_clip, tiny_weights, tmp_path):
    out = tmp_path / "pattern-colorized.mp4"
    result = CliRunner().invoke(main, ["video", str(test_clip), "--out", str(out), "--sheet", "--weights", str(tiny_weights),
                                       "--render-size", "64"])
    assert result.exit_code == 0, result.output
    sheet = Image.open(tmp_path / "pattern-colorized-sheet.jpg")
    assert sheet.format == "JPEG" and sheet.height > 4 * 160  # 12 pairs of 160 px thumbnails, 3 to a row
    assert not list(tmp_path.glob(".*.part"))


def test_frame_sheet_picks_twelve_frames_spread_over_the_film():
    from archivecolor.colorizer import prepare_job
    from archivecolor.sheet import FrameSheet

    job = prepare_job(np.full((32, 48), 50.0, np.float32), 32, 16)
    job.ab = np.zeros((*job.L_render.shape, 2), np.float32)

    def picked(frames, rate=None, length=None):
        sheet, chosen = FrameSheet.spread(frames, rate), []
        for index in range(length or frames):
            before = len(sheet.pairs)
            sheet.offer(index, job)
            if len(sheet.pairs) > before:
                chosen.append(index)
        return chosen

    assert picked(90) == [3, 10, 17, 24, 31, 38, 45, 52, 59, 66, 73, 80]  # mid-interval, not the first (black) frame
    assert picked(1000)[:2] == [41, 124] and len(picked(1000)) == 12
    assert picked(5) == [0, 1, 2, 3, 4]  # a short film: every frame
    assert picked(None, rate=25.0, length=3000)[:2] == [125, 375]  # unknown length: one every 10 s


def test_shared_real_footage_desaturated(colorizer, tmp_path):
    src = SHARED_DATA / "video" / "realshort.mp4"
    if not src.exists():
        pytest.skip("shared data not present")
    grey = tmp_path / "grey.mp4"
    ffmpeg("-i", str(src), "-vf", "hue=s=0", "-c:v", "libx264", "-c:a", "copy", str(grey))
    out = tmp_path / "colour.mp4"
    result = colorize_video(grey, out, colorizer)
    assert stream_facts(out) == stream_facts(grey)
    assert audio_hash(out) == audio_hash(grey)
    assert set(result.temporal) == {"smoothed", "per_frame"}


def test_silent_source_gives_silent_output(colorizer, tmp_path):
    src = tmp_path / "silent.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=1", "-c:v", "ffv1", str(src))
    out = tmp_path / "out.mkv"
    colorize_video(src, out, colorizer)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 0 and c.streams.video[0].frames in (0, 25)
    assert stream_facts(out)[0] == 25


@pytest.mark.parametrize("kind", ["empty", "garbage", "audio-only", "truncated"])
def test_bad_inputs_fail_clearly_and_leave_nothing(kind, test_clip, colorizer, tmp_path):
    src = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        src.write_bytes(b"")
    elif kind == "garbage":
        src.write_bytes(b"\x00\x01not a film" * 100)
    elif kind == "audio-only":
        src = tmp_path / "tone.m4a"
        ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(src))
    else:
        data = test_clip.read_bytes()
        src.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError) as info:
        colorize_video(src, out, colorizer)
    assert "\n" not in str(info.value)
    assert "Errno" not in str(info.value) and str(src) not in str(info.value)  # the error line names the file once
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_a_still_picture_is_not_taken_for_a_one_frame_film(tmp_path, colorizer):
    """FFmpeg opens a JPEG or PNG as a film of one frame; `video` used to colour it into a.jpg.mkv."""
    grey = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    stills = [tmp_path / "scan.jpg", tmp_path / "scan.png", tmp_path / "scan.tif", tmp_path / "one-frame.gif"]
    for path in stills:
        Image.fromarray(grey).save(path)
    for path in stills:
        with pytest.raises(VideoError, match="a still picture, not a film: colorize it with `archivecolor folder`"):
            colorize_video(path, tmp_path / f"{path.stem}-colorized.mkv", colorizer)
    frames = [Image.fromarray(np.roll(grey, 8 * i, axis=1)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert colorize_video(tmp_path / "anim.gif", tmp_path / "anim-colorized.mkv", colorizer).frames == 4  # an animation is a film
    assert sorted(p.name for p in tmp_path.glob("*.mkv")) == ["anim-colorized.mkv"]


def test_cli_goes_on_after_a_bad_film_and_exits_1_and_reports_each_film_and_reel(test_clip, tiny_weights, tmp_path):
    import json

    import tifffile

    films = tmp_path / "films"
    films.mkdir()
    (films / "a-broken.mp4").write_bytes(b"nope")
    (films / "b-good.mp4").write_bytes(test_clip.read_bytes())
    reel = tmp_path / "reel"
    reel.mkdir()
    for i in range(4):
        tifffile.imwrite(reel / f"reel_{i:06d}.tif", np.full((32, 48), 1000 * (i + 20), np.uint16))
    (reel / "reel_000002.tif").write_bytes(b"II*\x00 cut off")
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = CliRunner().invoke(main, ["video", str(films), str(reel), "--out", str(out), "--report", str(report),
                                       "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1
    assert "a-broken.mp4" in result.output
    assert (out / "b-good.mp4").exists() and not (out / "a-broken.mp4").exists()
    with av.open(str(out / "b-good.mp4")) as c:  # the film's own mark says what coloured it
        from archivecolor.files import file_sha256

        assert c.metadata["comment"].endswith(f"(colorized; not an original): weights {tiny_weights.name} sha256 "
                                              f"{file_sha256(tiny_weights)[:12]}, render size 64, saturation 1, no colour hints")
    data = json.loads(report.read_text())
    assert data["made_with"]["weights"] == str(tiny_weights) and len(data["made_with"]["weights_sha256"]) == 64
    assert data["made_with"]["smoothing"] == "ema" and data["made_with"]["cut_threshold"] == 0.3
    by_source = {Path(f["source"]).name: f for f in data["films"]}
    assert data["summary"] == {"done": 1, "skipped": 0, "failed": 2, "stopped": 0}
    assert by_source["a-broken.mp4"]["status"] == "failed" and by_source["a-broken.mp4"]["reason"]
    good = by_source["b-good.mp4"]
    assert good["status"] == "done" and good["frames"] == stream_facts(test_clip)[0] and good["temporal"]["smoothed"]["cdc"] >= 0
    reel_record = by_source["reel"]
    assert reel_record["kind"] == "image sequence" and reel_record["frames"] == 3
    assert [f["frame"] for f in reel_record["failed_frames"]] == ["reel_000002.tif"]


def test_a_folder_of_films_never_takes_its_own_outputs_or_system_files_for_films(test_clip, tiny_weights, tmp_path):
    films = tmp_path / "films"
    (films / "@eaDir").mkdir(parents=True)
    (films / "reel.mp4").write_bytes(test_clip.read_bytes())
    (films / "._reel.mp4").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a Mac's resource fork
    (films / "@eaDir" / "thumb.mp4").write_bytes(test_clip.read_bytes())  # a NAS's preview
    args = ["video", str(films), "--weights", str(tiny_weights), "--render-size", "64"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "left out 2 hidden or system" in first.output
    assert sorted(p.name for p in films.iterdir()) == ["._reel.mp4", "@eaDir", "reel-colorized.mp4", "reel.mp4"]
    renamed = films / "renamed by hand.mp4"  # no name to go by: the provenance tag tells
    (films / "reel-colorized.mp4").rename(renamed)
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert "left out 1 film(s) that archivecolor made" in second.output
    assert not list(films.glob("renamed by hand-colorized*"))


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_a_film_with_odd_sides_keeps_its_size_in_4_4_4(colorizer, tmp_path, codec):
    """x264 refuses 4:2:0 with an odd side (the run once failed with 'Nothing was written')."""
    source = tmp_path / "odd.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=161x121:rate=25:duration=0.4", "-vf", "hue=s=0", "-c:v", "ffv1", str(source))
    out = tmp_path / "odd-colour.mkv"
    colorize_video(source, out, colorizer, VideoConfig(batch_size=4, encode=replace(VideoConfig().encode, codec=codec)))
    assert stream_facts(out)[:4] == stream_facts(source)[:4]  # frames, rate, 161 × 121
    assert probe(out).pix_fmt == "yuv444p"


def test_output_is_marked_colorized_and_keeps_the_source_tags(test_clip, colorizer, tmp_path):
    tagged = tmp_path / "tagged.mov"
    ffmpeg("-i", str(test_clip), "-c", "copy", "-metadata", "title=Picnic 1931", "-metadata", "comment=Reel 4", str(tagged))
    for name, chunk_frames in (("one.mp4", None), ("chunked.mkv", 30)):
        out = tmp_path / name
        colorize_video(tagged, out, colorizer, VideoConfig(chunk_frames=chunk_frames))
        with av.open(str(out)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
        assert tags["title"] == "Picnic 1931"
        assert tags["comment"].startswith(f"Reel 4 | {PROVENANCE}: weights ")


@pytest.mark.parametrize("name, timecode", [("tc.mov", "10:00:00:00"), ("tc.mp4", "01:02:03:04"), ("tc.mkv", "09:59:50:00"),
                                            ("tc.mxf", "00:59:58:12"), ("df.mov", "01:00:00;02")])
def test_the_source_timecode_stays_in_one_pass_and_in_chunks(colorizer, tmp_path, name, timecode):
    """Conform and grading tools find a colour version's frames by the source's timecode."""
    rate = "30000/1001" if ";" in timecode else "25"
    source = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=96x64:rate={rate}:duration=2", "-vf", "hue=s=0", "-g", "10",
           "-c:v", "mpeg2video" if name.endswith(".mxf") else "libx264", "-timecode", timecode, str(source))
    assert probe(source).timecode == timecode
    for label, chunk_frames in (("one", None), ("chunked", 20)):
        out = tmp_path / f"{label}-{name}"
        result = colorize_video(source, out, colorizer, VideoConfig(batch_size=8, chunk_frames=chunk_frames))
        assert probe(out).timecode == timecode, label
        assert result.frames == stream_facts(out)[0] == stream_facts(source)[0]


def test_tape_and_web_formats_go_to_a_container_that_holds_the_colour_film(tiny_weights, tmp_path):
    """DV and WebM cannot hold x264: the default output is Matroska, the sound copied as it is;
    an output named .webm is refused in one line before any work."""
    films = tmp_path / "films"
    films.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=720x576:rate=25:duration=0.4", "-f", "lavfi", "-i", "sine=duration=0.4:sample_rate=48000",
           "-vf", "hue=s=0", "-target", "pal-dv", str(films / "tape.dv"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=0.4", "-vf", "hue=s=0", "-c:v", "libvpx-vp9", str(films / "tape.webm"))
    result = CliRunner().invoke(main, ["video", str(films), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    with av.open(str(films / "tape-colorized.dv.mkv")) as c:
        assert [(s.type, s.codec_context.name) for s in c.streams] == [("video", "h264"), ("audio", "pcm_s16le")]
    assert (films / "tape-colorized.webm.mkv").exists()  # the two never share a name
    refused = CliRunner().invoke(main, ["video", str(films / "tape.webm"), "--out", str(tmp_path / "x.webm"),
                                        "--weights", str(tiny_weights), "--render-size", "64"])
    assert refused.exit_code == 1 and "WebM holds only VP8, VP9 and AV1" in refused.output


def test_out_folder_mirrors_the_tree_of_a_folder_of_films(test_clip, tiny_weights, tmp_path):
    films, out = tmp_path / "films", tmp_path / "out"
    for reel in ("1950s/reel.mp4", "1960s/reel.mp4"):  # one name in two boxes
        (films / reel).parent.mkdir(parents=True, exist_ok=True)
        (films / reel).write_bytes(test_clip.read_bytes())
    result = CliRunner().invoke(main, ["video", str(films), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert (out / "1950s" / "reel.mp4").exists() and (out / "1960s" / "reel.mp4").exists()


@pytest.mark.parametrize("name, codec", [("dvd.mpg", ["-c:v", "mpeg2video", "-bf", "2", "-q:v", "4", "-c:a", "mp2"]),
                                         ("capture.ts", ["-c:v", "libx264", "-c:a", "aac", "-f", "mpegts"])])
def test_program_and_transport_streams_go_in_chunks_decoded_from_an_index_copy(name, codec, colorizer, tmp_path, monkeypatch):
    """A seek in .mpg/.vob/.ts lands near, not on, a frame (chunks decoded from the source came out
    short or shifted). Their chunks are decoded from a Matroska copy of the video stream, made once:
    the chunked output equals the one-pass output frame for frame, an interrupted run resumes
    with the copy it made, and the join keeps the source's audio."""
    from archivecolor.video import chunks as chunking, film as driver
    from archivecolor.video.ffmpeg import EncodeOptions

    film = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=4", "-f", "lavfi", "-i", "sine=duration=4",
           "-vf", "hue=s=0", "-g", "25", *codec, str(film))
    before = film.read_bytes()
    assert not probe(film).seeks_exactly
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=30)
    plan = chunking.plan_film(film, tmp_path / "out.mkv", config)
    assert plan.index_copy and len(plan.chunks) > 1
    one = colorize_video(film, tmp_path / "one.mkv", colorizer, replace(config, chunk_frames=None))
    assert one.frames == 100

    real_run_chunk, ran = driver.run_chunk, []

    def killed_after_one_chunk(segment, chunk, first, count):
        if ran:
            raise KeyboardInterrupt
        ran.append(first)
        real_run_chunk(segment, chunk, first, count)

    monkeypatch.setattr(driver, "run_chunk", killed_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        colorize_video(film, tmp_path / "out.mkv", colorizer, config)
    copy = tmp_path / ".out.mkv.chunks" / chunking.INDEX_COPY
    made = copy.stat().st_mtime_ns
    assert probe(copy).seeks_exactly and not (tmp_path / "out.mkv").exists()
    monkeypatch.setattr(driver, "run_chunk", real_run_chunk)
    real_make_index_copy, copies = chunking.make_index_copy, []

    def watched_make_index_copy(*args):
        copy, film_plan = real_make_index_copy(*args)
        copies.append((copy.stat().st_mtime_ns, film_plan.chunks))
        return copy, film_plan

    monkeypatch.setattr(driver, "make_index_copy", watched_make_index_copy)
    result = colorize_video(film, tmp_path / "out.mkv", colorizer, config)
    (copied_at, chunks), = copies
    assert copied_at == made  # the first run's copy, not a new one
    assert len(chunks) > 1 and chunks[0][0] == ran[0] == 0
    assert result.resumed_chunks == 1 and result.frames == 100 - chunks[0][1]

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    chunked, single = frames(tmp_path / "out.mkv"), frames(tmp_path / "one.mkv")
    assert len(chunked) == len(single) == 100
    # each chunk primes its smoothing on the frames before it (a seek to a frame that is no keyframe)
    difference = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(chunked, single)]
    assert max(difference[: chunks[0][1]]) == 0 and max(difference) < 0.5
    assert audio_hash(tmp_path / "out.mkv") == audio_hash(film)
    assert film.read_bytes() == before
    assert not (tmp_path / ".out.mkv.chunks").exists()  # the copy goes with the work folder


def test_an_index_copy_that_plans_one_chunk_falls_back_to_one_pass_from_the_source(tmp_path):
    """Should the copy's own packets give a single chunk, the film is done in one pass from the
    source (the copy holds no sound), and the copy is removed."""
    from archivecolor.video import chunks as chunking

    film = tmp_path / "dvd.mpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2", "-c:v", "mpeg2video", "-g", "10", str(film))
    plan = chunking.plan_film(film, tmp_path / "out.mkv", VideoConfig(chunk_frames=10))
    assert plan.index_copy and len(plan.chunks) > 1
    decode_from, replanned = chunking.make_index_copy(find_ffmpeg(), film, tmp_path / "out.mkv", plan, 1000)
    assert decode_from == film and replanned.chunks == [(0, 50)] and not replanned.index_copy
    assert not (tmp_path / ".out.mkv.chunks").exists()


def test_no_room_for_an_index_copy_fails_the_film_saying_what_to_do(colorizer, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from archivecolor.video import chunks as chunking

    film = tmp_path / "dvd.mpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2", "-c:v", "mpeg2video", "-g", "10", str(film))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(chunking.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(VideoError, match=r"no room for the index copy .*--chunk-frames 0"):
        colorize_video(film, tmp_path / "out.mkv", colorizer, VideoConfig(chunk_frames=10))
    assert not (tmp_path / ".out.mkv.chunks").exists() and not (tmp_path / "out.mkv").exists()
    monkeypatch.setattr(chunking.shutil, "disk_usage", shutil.disk_usage)
    assert colorize_video(film, tmp_path / "out.mkv", colorizer, VideoConfig(chunk_frames=0)).frames == 50


# --- smoothing and its measure (pure arrays) ------------------------------------------------
def flickering_frames(n=30, cut_at=None, seed=0):
    """A static scene whose predicted colour flickers frame to frame; optionally a cut to another scene."""
    rng = np.random.default_rng(seed)
    L1 = np.tile(np.linspace(20, 80, 64, dtype=np.float32), (48, 1))
    L2 = np.full((48, 64), 15.0, np.float32)
    L2[:, 32:] = 90.0
    frames = []
    for t in range(n):
        second = cut_at is not None and t >= cut_at
        L = L2 if second else L1
        base = np.array([-30.0, 40.0] if second else [30.0, 20.0], np.float32)
        ab = base + rng.normal(0, 12, size=2).astype(np.float32) + np.zeros((48, 64, 2), np.float32)
        frames.append((L, ab))
    return frames


def test_smoothing_lowers_flicker_and_keeps_colourfulness():
    frames = flickering_frames()
    raw, smooth = TemporalMeter(), TemporalMeter()
    smoother = TemporalSmoother(SmoothingConfig(mode="ema", strength=0.7))
    chroma_raw, chroma_smooth = [], []
    for L, ab in frames:
        out = smoother(L, ab)
        raw.add(L, ab)
        smooth.add(L, out)
        chroma_raw.append(np.hypot(*ab.reshape(-1, 2).T).mean())
        chroma_smooth.append(np.hypot(*out.reshape(-1, 2).T).mean())
    assert smooth.result()["static_delta_ab"] < 0.6 * raw.result()["static_delta_ab"]
    assert smooth.result()["cdc"] < raw.result()["cdc"]
    assert abs(np.mean(chroma_smooth) - np.mean(chroma_raw)) / np.mean(chroma_raw) < 0.05


def steady_and_flipping_frames(seed: int, frames: int = 40):
    """A still picture (so every pixel counts as static) whose predicted colour is steady on the
    right and flips hue every frame on the left: the blend greys the left, and the colourfulness
    hold then scaled the whole frame by a factor that changed from frame to frame, adding
    flicker to the steady half (CDC 0.083 -> 0.140 before the step limit)."""
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    L = np.full((h, w), 50.0, np.float32)
    L[:, : w // 2] += np.linspace(0, 30, w // 2, dtype=np.float32)[None]
    steady, flip = rng.normal(0, 6, 2), rng.uniform(5, 30)
    out = []
    for t in range(frames):
        ab = np.zeros((h, w, 2), np.float32)
        ab[:, w // 2 :] = steady
        ab[:, : w // 2, int(rng.integers(2))] = flip if t % 2 else -flip
        out.append((L, ab + rng.normal(0, rng.uniform(0.1, 2), ab.shape).astype(np.float32)))
    return out


@pytest.mark.parametrize("mode", ["ema", "flow"])
@pytest.mark.parametrize("make", ["flickering", "flipping"])
def test_smoothing_never_adds_flicker_the_model_did_not_make(mode, make):
    """Frame by frame, the smoothed colour changes no more than the raw predictions did, on the
    pixels whose L held still (static Δab) and in the a/b histograms (CDC between neighbours):
    so over a film neither figure can come out worse than per-frame. Whole-CDC (also 2 and 4
    frames apart) is checked on these clips, where it held too."""
    for seed in range(4):
        frames = flickering_frames() if make == "flickering" else steady_and_flipping_frames(seed)
        raw, smooth = TemporalMeter(), TemporalMeter()
        smoother = TemporalSmoother(SmoothingConfig(mode=mode, strength=[0.5, 0.7, 0.9, 0.95][seed]))
        for L, ab in frames:
            smooth.add(L, smoother(L, ab.copy()))
            raw.add(L, ab)
        before, after = raw.result(), smooth.result()
        assert after["static_delta_ab"] <= before["static_delta_ab"]
        assert after["cdc_1"] <= before["cdc_1"]
        assert after["cdc"] <= before["cdc"], (seed, before, after)


def test_ab_histograms_count_as_numpy_histogram_does():
    from archivecolor.video.temporal import AB_HIST_BINS, AB_RANGE, ab_histograms

    rng = np.random.default_rng(3)
    edges = np.linspace(*AB_RANGE, AB_HIST_BINS + 1, dtype=np.float32)
    values = np.concatenate([rng.normal(0, 35, 20000).clip(*AB_RANGE), edges[::7], AB_RANGE]).astype(np.float32)
    ab = np.stack([values, values[::-1]], axis=-1)[None]  # (1, N, 2)
    for channel, hist in enumerate(ab_histograms(ab)):
        reference, _ = np.histogram(ab[0, :, channel], bins=AB_HIST_BINS, range=AB_RANGE)
        assert np.abs(hist - reference / reference.sum()).max() <= 1.5 / values.size  # one value off at most


def test_static_delta_ab_is_the_mean_colour_change_where_nothing_moved():
    L = np.full((10, 10), 50.0, np.float32)
    moved = L.copy()
    moved[:, 5:] += 30  # the right half changed brightness: not static
    meter = TemporalMeter()
    meter.add(L, np.zeros((10, 10, 2), np.float32))
    meter.add(moved, np.full((10, 10, 2), [3.0, 4.0], np.float32))  # |Δab| = 5 everywhere
    assert meter.result()["static_delta_ab"] == pytest.approx(5.0)
    assert meter.static_pixels == 50


def test_smoothing_resets_at_a_scene_cut():
    frames = flickering_frames(cut_at=15)
    smoother = TemporalSmoother(SmoothingConfig(mode="ema", strength=0.9))
    outs = [smoother(L, ab) for L, ab in frames]
    assert smoother.cuts == 1
    assert np.allclose(outs[15], frames[15][1])  # the first frame after the cut is its own colour
    assert outs[15][0, 0, 0] < 0  # none of the previous scene's red carried over


def test_flow_mode_follows_motion_and_distrusts_occlusions():
    rng = np.random.default_rng(1)
    L = (rng.random((48, 64)) * 60 + 20).astype(np.float32)
    L = np.asarray(__import__("cv2").GaussianBlur(L, (0, 0), 2), np.float32)
    ab = np.zeros((48, 64, 2), np.float32)
    ab[:, :32] = (40, 0)
    smoother = TemporalSmoother(SmoothingConfig(mode="flow", strength=0.8))
    smoother(L, ab)
    shifted_L, shifted_ab = np.roll(L, 3, axis=1), np.roll(ab, 3, axis=1)
    out = smoother(shifted_L, shifted_ab)
    # warped along the motion, the past agrees with the present: no smearing of the colour edge
    assert np.abs(out[:, 8:28] - shifted_ab[:, 8:28]).mean() < 2.0


@pytest.mark.parametrize("strength", [0.7, 0.9])
def test_flow_mode_does_not_carry_the_past_into_what_just_came_into_view(strength):
    """A bright object enters a still shot of textured, yellowish background: the previous
    frame's colour warped there is background, which the occlusion check sees by its L, so the
    object keeps its own colour (magenta) instead of taking the background's. With the check
    turned off (threshold beyond any L), the same frames smear: this test can fail."""
    import cv2

    rng = np.random.default_rng(2)
    L = np.asarray(cv2.GaussianBlur((rng.random((64, 96)) * 60 + 20).astype(np.float32), (0, 0), 2), np.float32)
    background, thing = np.array([0.0, 30.0], np.float32), np.array([40.0, -20.0], np.float32)
    ab = np.zeros((64, 96, 2), np.float32) + background
    entered_L, entered_ab = L.copy(), ab.copy()
    entered_L[16:40, 24:48], entered_ab[16:40, 24:48] = 97.0, thing

    def object_colour(occlusion_threshold):
        smoother = TemporalSmoother(SmoothingConfig(mode="flow", strength=strength, occlusion_threshold=occlusion_threshold,
                                                    cut_threshold=2.0))
        for _ in range(5):
            smoother(L, ab)
        return smoother(entered_L, entered_ab)[20:36, 28:44].reshape(-1, 2).mean(axis=0)

    assert np.abs(object_colour(6.0) - thing).max() < 5.0  # its own colour
    assert np.abs(object_colour(1e9) - thing).max() > 15.0  # without the check: the background's, carried in


def test_rotated_film_comes_out_upright(colorizer, tmp_path):
    plain = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x96:rate=25:duration=1", "-vf", "hue=s=0", "-c:v", "libx264", str(plain))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    assert probe(rotated).rotation == 90 and probe(rotated).display_hw == (160, 96)
    out = tmp_path / "out.mp4"
    colorize_video(rotated, out, colorizer)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.height, frame.width) == (160, 96) and (frame.rotation or 0) == 0
        # upright: the first decoded frame matches the source as a player shows it
        got = frame.to_ndarray(format="gray").astype(int)
    with av.open(str(rotated)) as c:
        src = next(c.decode(video=0))
    expected = np.rot90(src.to_ndarray(format="gray"), k=1 if src.rotation == 90 else -1).astype(int)
    assert min(np.abs(got - expected).mean(), np.abs(got - np.rot90(expected, 2)).mean()) < 12


@pytest.mark.parametrize("order,codec,suffix", [("tff", "libx264", ".mp4"), ("bff", "ffv1", ".mkv")])
def test_interlaced_tape_transfer_stays_interlaced_with_its_field_order(order, codec, suffix, colorizer, tmp_path):
    tape = tmp_path / "tape.mpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=176x144:rate=25:duration=1", "-vf", f"hue=s=0,setfield={order}",
           "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-q:v", "3", str(tape))
    assert probe(tape).field_order == order[:1] * 2  # "tt" / "bb"
    out = tmp_path / f"colour{suffix}"
    colorize_video(tape, out, colorizer, VideoConfig(encode=replace(VideoConfig().encode, codec=codec)))
    assert probe(out).field_order is not None and probe(out).top_field_first == (order == "tff")
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).interlaced_frame  # coded as fields, not merely tagged


def test_progressive_film_stays_progressive(test_clip, colorizer, tmp_path):
    out = tmp_path / "colour.mp4"
    colorize_video(test_clip, out, colorizer)
    assert probe(test_clip).field_order is None and probe(out).field_order is None
    with av.open(str(out)) as c:
        assert not next(c.decode(video=0)).interlaced_frame


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """6 s at 25 fps with a keyframe every 25 frames and a tone: long enough for several chunks."""
    path = tmp_path_factory.mktemp("long") / "reel.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x96:rate=25:duration=6", "-f", "lavfi", "-i", "sine=frequency=330:duration=6",
           "-vf", "hue=s=0", "-c:v", "libx264", "-g", "25", "-keyint_min", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path))
    return path


def test_chunked_output_equals_the_one_pass_output(long_clip, colorizer, tmp_path):
    from archivecolor.video.chunks import plan_chunks

    chunks = plan_chunks(long_clip, probe(long_clip), 40)
    assert len(chunks) >= 3 and sum(n for _, n in chunks) == 150 and all(first % 25 == 0 for first, _ in chunks)
    plain = VideoConfig(smoothing=SmoothingConfig(mode="none"))
    one = tmp_path / "one.mp4"
    colorize_video(long_clip, one, colorizer, VideoConfig(smoothing=plain.smoothing, chunk_frames=None))
    many = tmp_path / "many.mp4"
    colorize_video(long_clip, many, colorizer, VideoConfig(smoothing=plain.smoothing, chunk_frames=40))
    assert stream_facts(many) == stream_facts(one) == stream_facts(long_clip)
    assert audio_hash(many) == audio_hash(long_clip)
    with av.open(str(one)) as a, av.open(str(many)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            assert np.abs(fa.to_ndarray(format="rgb24").astype(int) - fb.to_ndarray(format="rgb24").astype(int)).mean() < 2.0
    assert not list(tmp_path.glob(".*"))  # no work folder or temporary left


@pytest.mark.slow
def test_killed_long_film_resumes_from_its_finished_chunks(long_clip, tiny_weights, tmp_path):
    import signal
    import sys
    import time

    out = tmp_path / "reel.mp4"
    cmd = [sys.executable, "-m", "archivecolor", "video", str(long_clip), "--out", str(out), "--weights", str(tiny_weights),
           "--render-size", "64", "--chunk-frames", "25", "--batch-size", "1", "--backend", "torch"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / ".reel.mp4.chunks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(work.glob("chunk-*.mkv"))) < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the kill did not land mid-film"
    done_before = len(list(work.glob("chunk-*.mkv")))
    assert done_before >= 2
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} finished chunks from an earlier run were kept" in " ".join(rerun.stderr.split())
    assert stream_facts(out) == stream_facts(long_clip)
    assert audio_hash(out) == audio_hash(long_clip)
    assert not work.exists()


def test_dry_run_plans_every_film_and_writes_nothing(test_clip, long_clip, tiny_weights, tmp_path, monkeypatch):
    from archivecolor import console
    from archivecolor.video.ffmpeg import EncodeOptions
    from archivecolor.video.chunks import plan_chunks, prepare_chunk_folder
    from archivecolor.video.config import look_of

    films, out = tmp_path / "films", tmp_path / "out"
    films.mkdir()
    out.mkdir()
    (films / "a-broken.mp4").write_bytes(b"nope")
    (films / "b-good.mp4").write_bytes(test_clip.read_bytes())
    (films / "c-done.mp4").write_bytes(test_clip.read_bytes())
    (out / "c-done.mp4").write_bytes(b"finished earlier")
    (films / "d-reel.mp4").write_bytes(long_clip.read_bytes())
    chunks = plan_chunks(films / "d-reel.mp4", probe(films / "d-reel.mp4"), 40)
    interrupted = VideoConfig(encode=EncodeOptions(), look=look_of(tiny_weights, 256, 1.0))  # the settings of the command below
    work, names = prepare_chunk_folder(films / "d-reel.mp4", chunks, out / "d-reel.mp4", interrupted)  # an interrupted run's
    for name in names[:2]:
        name.write_bytes(b"a finished chunk")
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    monkeypatch.setattr(console.stderr, "width", 160)  # one line per film
    result = CliRunner().invoke(main, ["video", str(films), "--out", str(out), "--weights", str(tiny_weights), "--chunk-frames", "40",
                                       "--dry-run"])
    assert result.exit_code == 1, result.output  # the broken film would fail
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.split("│")] for line in result.output.splitlines())
            if cells[0][:2] in ("a-", "b-", "c-", "d-")}  # film: would be, frames, length, size, picture, chunks (finished)
    assert rows["a-broken.mp4"][0] == "failed" and rows["c-done.mp4"][0] == "skipped (exists)"
    assert rows["b-good.mp4"] == ["colorized", str(probe(test_clip).frames), "3.0 s", "160×120", "black-and-white", "1"]
    assert rows["d-reel.mp4"] == ["colorized", "150", "6.0 s", "128×96", "black-and-white", f"{len(chunks)} (2)"]
    assert "chunks: a run first checks that seeking" in " ".join(result.output.split())  # why a film may yet go in one pass
    other = CliRunner().invoke(main, ["video", str(films / "d-reel.mp4"), "--out", str(out / "d-reel.mp4"), "--chunk-frames", "40",
                                      "--preset", "veryfast", "--dry-run"])
    assert other.exit_code == 0 and f"{len(chunks)} (0)" in other.output  # other settings: a real run would start over
    for another_look in (["--saturation", "0.5"], ["--render-size", "128"], []):  # [] : the shipped model, not tiny_weights
        args = ["video", str(films / "d-reel.mp4"), "--out", str(out / "d-reel.mp4"), "--chunk-frames", "40", "--dry-run"]
        again = CliRunner().invoke(main, args + another_look + (["--weights", str(tiny_weights)] if another_look else []))
        assert again.exit_code == 0 and f"{len(chunks)} (0)" in again.output, another_look  # no two looks in one film
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before  # nothing written or removed


def test_the_dry_run_decides_each_film_as_the_run_does(test_clip, colorizer, tmp_path):
    """forecast_films and colorize_films share their decisions: an output that would be the source
    itself fails in both (the dry run once called it "colorized"), an existing output is skipped."""
    from archivecolor.video.film import colorize_films, forecast_films

    film = tmp_path / "reel.mp4"
    film.write_bytes(test_clip.read_bytes())
    done = tmp_path / "done.mp4"
    done.write_bytes(b"finished earlier")
    films = [(film, film), (film, done)]
    forecasts = forecast_films(films, VideoConfig(), overwrite=False)
    outcomes = colorize_films(films, colorizer, VideoConfig(), overwrite=False)
    assert [(f.status, f.reason) for f in forecasts] == [(o.status, o.reason) for o in outcomes]
    assert [f.status for f in forecasts] == ["failed", "skipped"] and "overwrite the source" in forecasts[0].reason
    (fresh,) = forecast_films([(film, tmp_path / "new.mp4")], VideoConfig())
    assert fresh.status == "colorized" and fresh.plan.info.frames == probe(test_clip).frames and not (tmp_path / "new.mp4").exists()


def test_ffmpeg_dying_mid_encode_is_one_clear_error(test_clip, colorizer, tmp_path):
    """An encoder that dies after a few frames: the film fails with ffmpeg's message, nothing is left."""
    wrapper = tmp_path / "dying-ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -f rawvideo "*" -i pipe: "*) head -c 200000 >/dev/null; echo "Conversion failed: disk on fire" >&2; exit 1;; esac\n'
        f'exec "{FFMPEG}" "$@"\n'
    )
    wrapper.chmod(0o755)
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match="could not encode it: Conversion failed: disk on fire"):
        colorize_video(test_clip, out, colorizer, VideoConfig(ffmpeg=str(wrapper)))
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_variable_frame_rate_keeps_every_timestamp(colorizer, tmp_path):
    from archivecolor.video.ffmpeg import frame_timestamps, is_variable_rate

    src = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x96:rate=25:duration=3", "-f", "lavfi", "-i", "sine=duration=3",
           "-vf", "hue=s=0,select='lt(n\\,25)+not(mod(n\\,3))'", "-fps_mode", "vfr", "-c:v", "libx264", "-c:a", "aac", str(src))
    stamps, base = frame_timestamps(src)
    assert is_variable_rate(stamps, base, probe(src).rate)
    out = tmp_path / "out.mp4"
    result = colorize_video(src, out, colorizer)
    assert result.variable_rate
    got, got_base = frame_timestamps(out)
    assert len(got) == len(stamps) == 41
    assert max(abs(float(a * base) - float(b * got_base)) for a, b in zip(stamps, got)) < 1e-3
    assert audio_hash(out) == audio_hash(src)


def test_millisecond_rounded_constant_rate_is_not_variable():
    from archivecolor.video.ffmpeg import is_variable_rate

    stamps = [round(i * 1000 / 29.97) * 1000 for i in range(100)]  # 32/33/34 ms steps, 1 µs ticks
    assert not is_variable_rate(stamps, Fraction(1, 1_000_000), Fraction(30000, 1001))


def test_black_and_white_film_takes_l_from_luma_with_the_same_result(test_clip, colorizer, tmp_path, monkeypatch):
    import archivecolor.video.ffmpeg as ffmpeg_module

    assert probe(test_clip).grey_content  # desaturated: neutral chroma in YUV
    via_luma = tmp_path / "luma.mp4"
    colorize_video(test_clip, via_luma, colorizer)
    monkeypatch.setattr(ffmpeg_module, "_neutral_chroma", lambda container, stream: False)
    assert not probe(test_clip).grey_content
    via_rgb = tmp_path / "rgb.mp4"
    colorize_video(test_clip, via_rgb, colorizer)
    with av.open(str(via_luma)) as a, av.open(str(via_rgb)) as b:
        diffs = [np.abs(fa.to_ndarray(format="rgb24").astype(int) - fb.to_ndarray(format="rgb24").astype(int)).mean()
                 for fa, fb in zip(a.decode(video=0), b.decode(video=0))]
    assert len(diffs) == 89 and max(diffs) < 1.0


def test_colour_footage_is_not_taken_for_black_and_white():
    src = SHARED_DATA / "video" / "cup.mp4"
    if not src.exists():
        pytest.skip("shared data not present")
    assert not probe(src).grey_content


def test_chunked_film_named_by_relative_paths_is_joined_with_the_usual_file_mode(long_clip, colorizer, tmp_path, monkeypatch):
    """The join runs ffmpeg inside the work folder: relative names must still find the source;
    a finished film is readable like any other file, not left with the temporary's 0600."""
    import os
    import shutil

    shutil.copy(long_clip, tmp_path / "reel.mp4")
    monkeypatch.chdir(tmp_path)
    result = colorize_video(Path("reel.mp4"), Path("out") / "reel.mp4", colorizer, VideoConfig(chunk_frames=40))
    assert result.frames == 150
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out" / "reel.mp4").stat().st_mode & 0o777 == 0o666 & ~umask


def test_chunks_continue_the_smoothing_across_their_joins(tmp_path, monkeypatch):
    """Each chunk is primed on the frames before it: lossless chunked output equals one pass to
    within the smoothing's settled residue, far closer than chunks that start their smoothing cold.
    (Matroska states no frame count: the packets give it, so it is chunked too.)"""
    from archivecolor.video import smooth
    from archivecolor.video.ffmpeg import EncodeOptions
    from archivecolor.video.chunks import plan_film

    clip = tmp_path / "moving.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=6", "-vf", "hue=s=0", "-c:v", "libx264", "-g", "25",
           "-keyint_min", "25", "-pix_fmt", "yuv420p", str(clip))
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=40)
    assert plan_film(clip, tmp_path / "x.mkv", config).chunks == [(0, 50), (50, 50), (100, 50)]
    colorizer = Colorizer(open_backend("onnx").backend, render_size=64)  # the shipped model: real, varying colour

    def frames(path):
        with av.open(str(path)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(int)

    colorize_video(clip, tmp_path / "one.mkv", colorizer, replace(config, chunk_frames=None))
    colorize_video(clip, tmp_path / "primed.mkv", colorizer, config)
    monkeypatch.setattr(smooth.SmoothingConfig, "settle_frames", lambda self: 0)
    colorize_video(clip, tmp_path / "cold.mkv", colorizer, config)
    one = frames(tmp_path / "one.mkv")
    primed = np.abs(frames(tmp_path / "primed.mkv") - one).reshape(len(one), -1).mean(1)
    cold = np.abs(frames(tmp_path / "cold.mkv") - one).reshape(len(one), -1).mean(1)
    assert len(one) == 150 and primed[:50].max() == 0  # the first chunk is the one pass itself
    # How small the primed residue gets depends on how much the model's colour moves from frame to
    # frame: 10× or more under the Lite0 model, 9.2× under the Lite2 classifying one; unprimed chunks give 1×.
    assert cold.max() > 0.1 and primed.max() < cold.max() / 5


def test_saturation_zero_gives_a_grey_film(test_clip, tmp_path):
    from archivecolor.lab import srgb_to_lab

    out = tmp_path / "grey.mkv"
    result = CliRunner().invoke(main, ["video", str(test_clip), "--out", str(out), "--render-size", "64", "--saturation", "0",
                                       "--codec", "ffv1"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == stream_facts(test_clip)[0]
    assert max(float(np.hypot(*srgb_to_lab(f)[..., 1:].transpose(2, 0, 1)).mean()) for f in frames) < 1.5
    coloured = tmp_path / "colour.mkv"
    assert CliRunner().invoke(main, ["video", str(test_clip), "--out", str(coloured), "--render-size", "64", "--codec", "ffv1"]).exit_code == 0
    with av.open(str(coloured)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert float(np.hypot(*srgb_to_lab(first)[..., 1:].transpose(2, 0, 1)).mean()) > 3.0


def test_a_film_whose_keyframes_do_not_decode_true_after_a_seek_goes_in_one_pass(colorizer, long_clip, tmp_path):
    """The shared cockatoo clip's later IDR frames carry non-intra slices: decoded after a seek
    they give garbage (chunks 2 and on came out as smears). Seeking is checked against decoding
    from the start; such a film goes in one pass, saying why, and a clean one keeps its chunks."""
    from archivecolor.video import chunks as chunking
    from archivecolor.video.ffmpeg import EncodeOptions

    src = SHARED_DATA / "video" / "cockatoo.mp4"
    if not src.exists():
        pytest.skip("needs ../shared/data/video/cockatoo.mp4")
    film = tmp_path / "cockatoo.mp4"
    ffmpeg("-i", str(src), "-t", "9", "-c", "copy", str(film))  # its first 9 s, the bitstream as it is
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=40)
    plan = chunking.plan_film(film, tmp_path / "chunked.mkv", config)
    assert [first for first, _ in plan.chunks] == [0, 76, 145]  # its keyframes
    assert chunking.seeks_land_true(find_ffmpeg(), film, plan.info, [76 - 13])  # lands on frame 0's keyframe: decodes true
    assert not chunking.seeks_land_true(find_ffmpeg(), film, plan.info, [145 - 13])  # lands on 76's: garbage
    chunked = colorize_video(film, tmp_path / "chunked.mkv", colorizer, config)
    assert chunked.one_pass_reason and "seek" in chunked.one_pass_reason
    assert chunked.frames == plan.info.frames

    def grey_frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]

    source, output = grey_frames(film), grey_frames(tmp_path / "chunked.mkv")
    assert len(output) == len(source)
    assert max(np.abs(a - b).mean() for a, b in zip(output, source)) < 5  # every frame the source's (garbage: 35–76)
    assert not list(tmp_path.glob(".*"))  # no work folder left
    clean = chunking.plan_film(long_clip, tmp_path / "x.mkv", replace(config, chunk_frames=40))
    assert chunking.seeks_land_true(find_ffmpeg(), long_clip, clean.info, [first - 13 for first, _ in clean.chunks[1:]])


def test_a_film_damaged_midway_fails_clearly_instead_of_hanging(tiny_weights, tmp_path):
    """Its second half zeroed (the index intact): ffmpeg's decoder writes hundreds of KiB of
    complaints, which once filled the stderr pipe nobody read and hung the run. Now the film
    fails on one line, saying how much of it decoded, and nothing is written."""
    import sys

    from archivecolor.video.ffmpeg import STDERR_KEPT

    from conftest import film_zeroed_midway

    film = film_zeroed_midway(tmp_path / "damaged.mp4", "160x120", 60)
    complaints = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(film), "-f", "null", "-"],
                                capture_output=True).stderr
    assert len(complaints) > 2 * STDERR_KEPT  # more than a pipe holds
    out = tmp_path / "out.mkv"
    run = subprocess.run([sys.executable, "-m", "archivecolor", "video", str(film), "--out", str(out), "--weights", str(tiny_weights),
                          "--render-size", "64", "--chunk-frames", "0"], capture_output=True, text=True, timeout=240)
    assert run.returncode == 1
    assert "of its 1500 frames could be decoded: the file is damaged or cut short" in " ".join(run.stderr.split())
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_an_mp4_cut_without_re_encoding_goes_in_chunks_frame_for_frame(colorizer, long_clip, tmp_path):
    """`ffmpeg -ss … -c copy` leaves the frames before the cut in the file, hidden by an edit list:
    chunks planned on all the packets started late (\\"the chunk from frame 500 gave 2 frames, 85
    expected\\"). Only the frames shown are counted now."""
    from archivecolor.video import chunks as chunking
    from archivecolor.video.ffmpeg import EncodeOptions

    cut = tmp_path / "cut.mp4"
    ffmpeg("-ss", "1.3", "-i", str(long_clip), "-c", "copy", str(cut))
    with av.open(str(cut)) as c:
        shown = [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]
        assert c.streams.video[0].frames > len(shown)  # the container counts the hidden frames too
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=40)
    plan = chunking.plan_film(cut, tmp_path / "out.mkv", config)
    assert plan.info.frames == len(shown) and len(plan.chunks) > 1
    result = colorize_video(cut, tmp_path / "out.mkv", colorizer, config)
    assert result.frames == len(shown) and result.one_pass_reason is None
    with av.open(str(tmp_path / "out.mkv")) as c:
        out = [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]
    assert len(out) == len(shown) and max(np.abs(a - b).mean() for a, b in zip(out, shown)) < 3


def test_an_avi_whose_seeks_land_a_frame_early_goes_in_one_pass(colorizer, tmp_path):
    """MPEG-4 with B-frames in AVI: a seek to a keyframe gives the frame before it, so its chunks
    would each have been shifted by a frame. The seek check sends it through in one pass."""
    from archivecolor.video import chunks as chunking
    from archivecolor.video.ffmpeg import EncodeOptions

    film = tmp_path / "tape.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4", "-vf", "hue=s=0", "-c:v", "mpeg4", "-bf", "2",
           "-g", "12", str(film))
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=40)
    plan = chunking.plan_film(film, tmp_path / "out.mkv", config)
    assert len(plan.chunks) > 1 and not plan.index_copy
    assert not chunking.seeks_land_true(find_ffmpeg(), film, plan.info, [plan.chunks[1][0]])
    result = colorize_video(film, tmp_path / "out.mkv", colorizer, config)
    assert result.one_pass_reason and result.frames == plan.info.frames == 100
    with av.open(str(film)) as c:
        source = [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]
    with av.open(str(tmp_path / "out.mkv")) as c:
        out = [f.to_ndarray(format="gray").astype(int) for f in c.decode(video=0)]
    assert max(np.abs(a - b).mean() for a, b in zip(out, source)) < 1  # every frame in its place (neighbours differ by ~3)


@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_an_mp4_cut_short_with_its_index_in_front_fails_and_writes_nothing(tiny_weights, tmp_path, kept):
    """-movflags +faststart puts the index first, so a copy that stopped still says 75 frames: it
    decoded to a shorter film, written under the final name and taken for finished by a re-run."""
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-frames:v", "75", "-vf", "hue=s=0", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(whole))
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * kept)])
    out = tmp_path / "out" / "cut.mp4"
    result = CliRunner().invoke(main, ["video", str(cut), "--out", str(out), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1
    assert "cut short: its index promises 75 frames" in " ".join(result.output.split())
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))


def test_a_killed_one_pass_run_leaves_no_temporary_after_the_next_run(colorizer, test_clip, tmp_path):
    """A kill leaves .NAME.XXXX.part beside the film; the next run on it removes it (it holds the film's lock)."""
    out = tmp_path / "out.mp4"
    stale = tmp_path / f".{out.name}.k1ll3d00.part"
    stale.write_bytes(b"half a film")
    colorize_video(test_clip, out, colorizer, VideoConfig(chunk_frames=0))
    assert out.exists() and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # its lock is gone too


def test_a_second_run_writing_the_same_film_is_refused(colorizer, test_clip, tmp_path):
    from archivecolor.files import FolderInUse, hold_folder

    out = tmp_path / "out.mp4"
    first = hold_folder(tmp_path, "archivecolor video run writing out.mp4", lock_name=".out.mp4.lock")
    try:
        with pytest.raises(FolderInUse, match="in use by another archivecolor video run writing out.mp4"):
            colorize_video(test_clip, out, colorizer, VideoConfig(chunk_frames=0))
    finally:
        first.close()
    assert not out.exists()


@pytest.mark.parametrize("codec, suffix, expect_bits", [("prores_ks", ".mov", 10), ("ffv1", ".mkv", 10), ("libx264", ".mp4", 8)])
def test_a_10_bit_master_keeps_its_depth_where_the_codec_carries_it(colorizer, tiny_weights, tmp_path, codec, suffix, expect_bits):
    """A 10-bit source came out 8-bit whatever the codec. Now ProRes and FFV1 (and x265) keep 10 bits,
    seen in the decoded samples; the default x264 stays 8-bit and the table says so."""
    from archivecolor.video.ffmpeg import EncodeOptions

    master = tmp_path / "master.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1", "-vf", "hue=s=0", "-c:v", "prores_ks", "-profile:v", "3",
           "-pix_fmt", "yuv422p10le", str(master))
    assert probe(master).bits == 10
    out = tmp_path / f"out{suffix}"
    options = EncodeOptions(codec=codec, crf=18 if codec == "libx264" else None, preset="medium" if codec == "libx264" else None)
    result = colorize_video(master, out, colorizer, VideoConfig(encode=options, chunk_frames=0))
    assert (result.source_bits, result.output_bits) == (10, expect_bits)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert ("10" in frame.format.name) == (expect_bits == 10), frame.format.name
        luma = frame.to_ndarray(format="gray16le" if expect_bits == 10 else "gray").astype(int)
    if expect_bits == 10:
        assert np.unique(luma % 64).size > 4  # values between 8-bit steps: the extra bits carry picture
    cli = CliRunner().invoke(main, ["video", str(master), "-o", str(tmp_path / f"cli{suffix}"), "--codec", codec, "--weights",
                                    str(tiny_weights), "--render-size", "64"], terminal_width=200)
    assert cli.exit_code == 0, cli.output
    said = " ".join(cli.output.split())
    assert f"{expect_bits}-bit" in said
    assert ("written 8-bit from a 10-bit source; --codec libx265, prores_ks or ffv1 keep its depth" in said) == (expect_bits == 8)


def test_ctrl_c_stops_a_batch_of_films_says_how_far_it_got_and_a_rerun_resumes(tiny_weights, tmp_path):
    """SIGINT as a terminal's Ctrl-C sends it (to the whole process group, ffmpeg included):
    exit 130 within seconds, "stopped: N of 3 films done", the report so far written, no
    temporary left under a film's name, and the same command finishes the rest."""
    import json
    import os
    import signal
    import sys
    import time

    films = tmp_path / "films"
    films.mkdir()
    for name in ("a", "b", "c"):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=12", "-vf", "hue=s=0", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(films / f"{name}.mp4"))
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = [sys.executable, "-m", "archivecolor", "video", str(films), "-o", str(out), "--report", str(report),
            "--weights", str(tiny_weights), "--render-size", "192", "--batch-size", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (out / "a.mp4").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # into the second film
    if proc.poll() is not None or (out / "b.mp4").exists():
        pytest.skip("the run finished a second film before the signal")
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 10
    line = " ".join(err.split())
    assert "stopped: 1 of 3 films done; run the same command to resume" in line and "Aborted" not in line, line[-600:]
    data = json.loads(report.read_text())
    assert data["summary"]["done"] == 1 and [Path(f["source"]).name for f in data["films"]] == ["a.mp4"]
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4"]  # no half-written b.mp4, no temporary, no lock
    again = subprocess.run(args, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    assert [f["status"] for f in json.loads(report.read_text())["films"]] == ["skipped", "done", "done"]


def test_an_ordinary_x264_mp4_whose_pictures_start_a_frame_after_its_sound_goes_in_chunks(colorizer, tmp_path):
    """A 15 s x264 MP4 with B-frames whose video stream starts one frame after zero (first pts
    512 at 1/12800, the sound at zero) was refused chunks: seeks were aimed in the video's own
    time, ffmpeg's -ss is in the file's, so every seek landed a frame early and the check saw
    the wrong frames. Now it goes in chunks, frame for frame as one pass."""
    from archivecolor.video import chunks as chunking
    from archivecolor.video.ffmpeg import EncodeOptions

    film = tmp_path / "ordinary.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=15", "-f", "lavfi", "-i", "sine=duration=15",
           "-vf", "hue=s=0,setpts=PTS+1/(25*TB)", "-c:v", "libx264", "-g", "25", "-bf", "3", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(film))
    with av.open(str(film)) as c:
        video = c.streams.video[0]
        assert video.start_time == 512 and video.time_base == Fraction(1, 12800) and video.codec_context.has_b_frames
    info = probe(film)
    assert info.video_start == pytest.approx(0.04)
    config = VideoConfig(encode=EncodeOptions(codec="ffv1", crf=None, preset=None), chunk_frames=100)
    plan = chunking.plan_film(film, tmp_path / "chunked.mkv", config)
    assert len(plan.chunks) == 4
    assert chunking.seeks_land_true(find_ffmpeg(), film, plan.info, [first for first, _ in plan.chunks[1:]])
    chunked = colorize_video(film, tmp_path / "chunked.mkv", colorizer, config)
    assert chunked.one_pass_reason is None and chunked.chunks == 4
    colorize_video(film, tmp_path / "one.mkv", colorizer, replace(config, chunk_frames=None))

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]

    a, b = frames(tmp_path / "chunked.mkv"), frames(tmp_path / "one.mkv")
    assert len(a) == len(b) == plan.info.frames
    assert max(np.abs(x - y).mean() for x, y in zip(a, b)) < 0.5  # each chunk primed on the frames before it
    assert audio_hash(tmp_path / "chunked.mkv") == audio_hash(tmp_path / "one.mkv")  # the sound as one pass gives it
    for out in ("chunked.mkv", "one.mkv"):  # and the pictures start as late after it as in the source: in sync
        with av.open(str(tmp_path / out)) as c:
            video, sound = c.streams.video[0], c.streams.audio[0]
            assert float(video.start_time * video.time_base) - float(sound.start_time * sound.time_base) == pytest.approx(0.04, abs=0.002)


def test_a_film_left_less_steady_by_smoothing_is_said_so():
    from archivecolor.video.temporal import smoothing_note

    figures = lambda cdc, static: {"cdc": cdc, "static_delta_ab": static}
    assert smoothing_note({"per_frame": figures(0.0010, 0.10), "smoothed": figures(0.0008, 0.05)}) is None
    note = smoothing_note({"per_frame": figures(0.0010, 0.10), "smoothed": figures(0.0012, 0.05)})
    assert note.startswith("smoothing left its colour less steady than per-frame (CDC 0.001 → 0.0012)")
    assert "--smoothing none" in note and "static" not in note
    assert smoothing_note({}) is None


def test_a_link_loop_or_a_fifo_among_films_is_named_and_the_rest_go_on(test_clip, tiny_weights, tmp_path):
    import os

    films = tmp_path / "films"
    films.mkdir()
    (films / "good.mp4").write_bytes(test_clip.read_bytes())
    os.symlink("b.mp4", films / "a.mp4")
    os.symlink("a.mp4", films / "b.mp4")
    os.mkfifo(films / "pipe.mp4")
    result = CliRunner().invoke(main, ["video", str(films), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
                                       "--render-size", "64"])
    assert result.exit_code == 1
    lines = [" ".join(line.split()) for line in result.output.splitlines() if line.startswith("error: ")]
    assert any("a.mp4'" in line and "link loop" in line for line in lines) and any("pipe.mp4'" in line for line in lines)
    assert (tmp_path / "out" / "good.mp4").exists()


def test_an_output_named_as_its_own_source_is_refused_not_skipped(test_clip, tiny_weights, tmp_path):
    film = tmp_path / "reel.mp4"
    film.write_bytes(test_clip.read_bytes())
    before = film.read_bytes()
    result = CliRunner().invoke(main, ["video", str(film), "-o", str(film), "--weights", str(tiny_weights), "--render-size", "64"])
    assert result.exit_code == 1 and "the output would overwrite the source" in " ".join(result.output.split())
    assert film.read_bytes() == before
