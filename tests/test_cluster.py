"""`--cluster`: the same outputs as one machine, faults survived, nothing written twice or half.

Ray picks a network address from the machine's interfaces. Every Ray here runs inside a
network namespace that holds nothing but loopback (`unshare -n`, lo up), where Ray falls back to
127.0.0.1: no test ever opens a connection off this machine. Where no such namespace can be
made (not root, no unshare), the tests that need Ray skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from archivecolor.cli import main
from archivecolor.cluster import ActorPlan, ClusterConfig, ClusterError, plan_actors

from conftest import synthetic_photo

HERE = Path(__file__).resolve().parent


def loopback_only_namespace() -> str | None:
    """None if a loopback-only network namespace can be made here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    try:
        probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ip -o link"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    if probe.returncode != 0:
        return f"cannot make a network namespace (unshare -n needs root or user namespaces): {probe.stderr.strip()[:200]}"
    links = [line.split(":")[1].strip() for line in probe.stdout.splitlines() if line.strip()]
    if links != ["lo"]:
        return f"the new namespace is not loopback-only: {links}"
    return None


@pytest.fixture(scope="module")
def loopback():
    pytest.importorskip("ray.data", reason='Ray is not installed: pip install "archivecolor[cluster]"')
    why_not = loopback_only_namespace()
    if why_not:
        pytest.skip(why_not)


def in_loopback(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command inside a fresh loopback-only network namespace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # never an address from outside
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".json"}


def statuses(out: Path) -> dict[str, str]:
    report = json.loads((out / "archivecolor-report.json").read_text())
    return {f["source"]: f["status"] for f in report["files"]}


@pytest.fixture
def scans(colour_folder: Path) -> Path:
    """The colour photos, a 16-bit grey scan, a two-page TIFF and a corrupt file."""
    import tifffile

    rng = np.random.default_rng(5)
    grey = cv2.cvtColor(synthetic_photo(rng, 80), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(colour_folder / "deep16.png"), grey.astype(np.uint16) * 257)
    tifffile.imwrite(colour_folder / "pages.tif", np.stack([grey, grey[::-1]]), photometric="minisblack")
    (colour_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    return colour_folder


def grey_scans(folder: Path, count: int, seed: int) -> Path:
    """`count` grey 320×240 PNGs: enough work that a kill lands mid-run."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.resize(cv2.cvtColor(synthetic_photo(rng, 64), cv2.COLOR_RGB2GRAY), (320, 240)))
    return folder


def folder_args(source: Path, out: Path, weights: Path) -> list[str]:
    return ["folder", str(source), "--out", str(out), "--weights", str(weights), "--render-size", "64", "--batch-size", "3", "--backend", "onnx"]


def test_folder_on_a_cluster_writes_what_one_machine_writes(loopback, scans, tiny_weights, tmp_path):
    single = tmp_path / "single"
    result = CliRunner().invoke(main, folder_args(scans, single, tiny_weights))
    assert result.exit_code == 1  # the corrupt file
    clustered = tmp_path / "cluster"
    first, second = sorted(name for name in tree(single) if name.count("/") == 1)[:2]  # two photos in a subfolder
    (clustered / second).parent.mkdir(parents=True)
    shutil.copy(single / first, clustered / "elsewhere.bin")  # an unrelated file is left alone
    shutil.copy(single / second, clustered / second)  # finished by an earlier run: skipped
    run = in_loopback(sys.executable, "-m", "archivecolor", *folder_args(scans, clustered, tiny_weights), "--cluster", "local")
    assert run.returncode == 1, run.stderr
    assert "'broken.jpg'" in run.stderr and "cluster: 2 CPUs" in run.stderr
    expected = tree(single)
    got = tree(clustered)
    assert got.pop("elsewhere.bin") == expected[first]
    assert got.keys() == expected.keys() and len(got) >= 17
    assert all(got[name] == expected[name] for name in expected), [n for n in expected if got[n] != expected[n]]
    want = statuses(single) | {second: "skipped"}
    assert statuses(clustered) == want
    assert not list(clustered.rglob(".*.part"))


def test_hints_on_a_cluster_colour_as_on_one_machine(loopback, hint_weights, tmp_path):
    """folder --hints --cluster: each file's hints travel with it to the model actors; the outputs,
    marks and report equal one machine's; a bad hints file and an orphan fail alike."""
    src = grey_scans(tmp_path / "scans", 4, seed=3)
    hints = tmp_path / "hints"
    hints.mkdir()
    (hints / "01.hints.json").write_text(json.dumps({"points": [{"x": 100, "y": 80, "color": "#c03020", "radius": 20},
                                                                {"x": 250, "y": 200, "color": "#2040c0"}]}))
    (hints / "02.hints.json").write_text("not JSON")
    (hints / "gone.hints.json").write_text(json.dumps({"points": []}))
    args = lambda out: folder_args(src, out, hint_weights) + ["--hints", str(hints)]  # noqa: E731
    single = CliRunner().invoke(main, args(tmp_path / "single"))
    assert single.exit_code == 1, single.output
    run = in_loopback(sys.executable, "-m", "archivecolor", *args(tmp_path / "cluster"), "--cluster", "local")
    assert run.returncode == 1, run.stderr
    assert tree(tmp_path / "cluster") == tree(tmp_path / "single")
    report = lambda out: {f["source"]: (f["status"], f.get("hints", 0)) for f in json.loads((out / "archivecolor-report.json").read_text())["files"]}  # noqa: E731
    assert report(tmp_path / "cluster") == report(tmp_path / "single")
    assert report(tmp_path / "cluster")["01.png"] == ("done", 2) and report(tmp_path / "cluster")["02.png"][0] == "failed"
    plain = CliRunner().invoke(main, folder_args(src, tmp_path / "plain", hint_weights))
    assert plain.exit_code == 0 and tree(tmp_path / "plain")["01.png"] != tree(tmp_path / "cluster")["01.png"]  # the hints told


@pytest.mark.slow
def test_a_killed_model_actor_is_replaced_and_every_output_is_written_once(loopback, tiny_weights, tmp_path):
    source = grey_scans(tmp_path / "many", 40, seed=1)
    single = tmp_path / "single"
    assert CliRunner().invoke(main, folder_args(source, single, tiny_weights)).exit_code == 0
    out = tmp_path / "cluster"
    # Ray's start, the kill and the actor's restart take minutes on a loaded 2-core machine: the
    # bound is for a hang, not a speed test (it was 300 s and was hit under load)
    run = in_loopback(sys.executable, str(HERE / "cluster_jobs.py"), "kill-actor", str(source), str(out), str(tiny_weights), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    assert facts["killed"], "no model actor was found to kill"
    assert facts["killed_at"] < 40, "the kill did not land mid-run"
    done = [f for f in facts["report"]["files"] if f["status"] == "done"]
    assert len(done) == 40 and len({f["source"] for f in done}) == 40
    assert facts["replaced"] == []  # no output was written a second time over a finished one
    assert tree(out) == tree(single)  # every output complete, as one machine writes it
    assert not list(out.rglob(".*.part"))


def ffmpeg(*args):
    from archivecolor.video.ffmpeg import find_ffmpeg

    subprocess.run([find_ffmpeg(None), "-y", "-loglevel", "error", *args], check=True)


@pytest.mark.slow
def test_films_on_a_cluster_match_one_machine_and_long_ones_are_joined(loopback, tiny_weights, tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x96:rate=25:duration=4", "-f", "lavfi", "-i", "sine=frequency=330:duration=4",
           "-vf", "hue=s=0", "-c:v", "libx264", "-g", "25", "-keyint_min", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
           str(films / "reel.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24:duration=1", "-vf", "hue=s=0", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(films / "short.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x96:rate=25:duration=3", "-f", "lavfi", "-i", "sine=duration=3", "-vf", "hue=s=0",
           "-c:v", "mpeg2video", "-g", "25", "-c:a", "mp2", str(films / "dvd.mpg"))  # no index: chunks from a copy
    (films / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    args = ["video", str(films), "--weights", str(tiny_weights), "--render-size", "64", "--chunk-frames", "30", "--backend", "onnx",
            "--sheet"]
    single = CliRunner().invoke(main, args + ["--out", str(tmp_path / "single")])
    assert single.exit_code == 1
    run = in_loopback(sys.executable, "-m", "archivecolor", *args, "--out", str(tmp_path / "cluster"), "--cluster", "local")
    assert run.returncode == 1, run.stderr[-3000:]
    assert "broken.mp4" in run.stderr
    expected, got = tree(tmp_path / "single"), tree(tmp_path / "cluster")
    films_and_sheets = ["dvd-sheet.jpg", "dvd.mpg", "reel-sheet.jpg", "reel.mp4", "short-sheet.jpg", "short.mp4"]
    assert sorted(got) == sorted(expected) == films_and_sheets  # --sheet on a cluster writes each film's sheet
    assert got == expected  # chunks joined without re-encoding, and the sheets: the same bytes as one machine
    assert not list((tmp_path / "cluster").glob(".*"))  # no work folder or temporary left


def test_without_ray_cluster_says_what_to_install(tmp_path, tiny_weights, colour_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(main, folder_args(colour_folder, tmp_path / "out", tiny_weights) + ["--cluster", "auto"])
    assert result.exit_code == 1
    assert 'pip install "archivecolor[cluster]"' in result.output


@pytest.mark.parametrize("resources, config, expected", [
    ({"CPU": 2}, ClusterConfig(), ActorPlan(1, 1, 0)),  # this machine: one actor, one CPU left to decode and write
    ({"CPU": 64}, ClusterConfig(), ActorPlan(8, 4, 0)),  # half the CPUs to 4-thread actors
    ({"CPU": 64, "GPU": 8}, ClusterConfig(), ActorPlan(8, 1, 1)),  # one actor per GPU
    ({"CPU": 64, "GPU": 8}, ClusterConfig(gpus_per_actor=0.5), ActorPlan(16, 1, 0.5)),
    ({"CPU": 16}, ClusterConfig(actors=3, cpus_per_actor=2), ActorPlan(3, 2, 0)),
])
def test_actor_plan_follows_the_cluster(resources, config, expected):
    assert plan_actors(config, resources) == expected


def test_video_actors_take_every_cpu_and_impossible_plans_are_refused():
    assert plan_actors(ClusterConfig(), {"CPU": 2}, model_share=1.0) == ActorPlan(2, 1, 0)
    with pytest.raises(ClusterError, match="GPU"):
        plan_actors(ClusterConfig(gpus_per_actor=1), {"CPU": 8})
    with pytest.raises(ClusterError, match="CPUs"):
        plan_actors(ClusterConfig(cpus_per_actor=16), {"CPU": 8})
    with pytest.raises(ClusterError, match="to decode and write"):  # it would wait forever for a free CPU
        plan_actors(ClusterConfig(actors=2), {"CPU": 2})
    assert plan_actors(ClusterConfig(actors=2, cpus_per_actor=0.5), {"CPU": 2}) == ActorPlan(2, 0.5, 0)


@pytest.mark.slow
def test_a_rerun_after_the_whole_cluster_died_skips_what_was_finished(loopback, tiny_weights, tmp_path):
    import signal
    import time

    source = grey_scans(tmp_path / "many", 60, seed=2)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "archivecolor", *folder_args(source, out, tiny_weights), "--cluster", "local"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.rglob("*.png"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, the head node and every worker at once
    proc.wait()
    finished = {p.name for p in out.glob("*.png")}
    assert 3 <= len(finished) < 60, "the kill did not land mid-run"
    rerun = in_loopback(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = statuses(out)
    assert {name for name, status in report.items() if status == "skipped"} == finished
    assert sum(status == "done" for status in report.values()) == 60 - len(finished)
    assert all(cv2.imread(str(out / f"{i:02d}.png")) is not None for i in range(60))
    assert not list(out.rglob(".*.part"))


def test_model_actors_colour_at_the_saturation_asked_for():
    from archivecolor.cluster import ModelSpec, open_actor_colorizer, weights_payload
    from archivecolor.weights import resolve_weights

    colorizer = open_actor_colorizer(weights_payload(resolve_weights(None)), ModelSpec(backend="onnx", render_size=64, saturation=0.5), 1)
    assert colorizer.chroma_gain == 0.5 and colorizer.render_size == 64


def test_a_film_that_decodes_short_fails_on_a_cluster_actor_as_on_one_machine(tiny_weights, tmp_path):
    """The actor runs the film through the same video.film.run_piece as one machine, with its
    completeness check: a film whose second half is zeroed (its index intact) fails and leaves
    nothing under its name (the cluster once wrote it and reported it done). No Ray needed:
    the actor's own call is driven here."""
    import pickle

    from archivecolor.backends import open_backend
    from archivecolor.cluster.video import _FilmActor
    from archivecolor.colorizer import Colorizer
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.film import hold_film, prepare_film

    from conftest import film_zeroed_midway

    film = film_zeroed_midway(tmp_path / "damaged.mp4", "96x64", 20)
    out = tmp_path / "out.mkv"
    with hold_film(out):
        job = prepare_film(film, out, VideoConfig(chunk_frames=None))
    actor = _FilmActor.__new__(_FilmActor)
    actor.colorizer = Colorizer(open_backend("torch", tiny_weights, device="cpu").backend, render_size=64)
    reply = actor._run({"film": 0, "job": pickle.dumps(job), "piece": 0, "count": job.pieces[0].count})
    assert "of its 500 frames could be decoded: the file is damaged or cut short" in reply["reason"]
    assert not out.exists() and not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_film_hints_on_a_cluster_colour_as_on_one_machine(loopback, hint_weights, tmp_path):
    """video --hints --cluster: the driver tracks the hints through the film, the job carries them
    to the actors; the film, its chunks joined, equals one machine's, and the report lists the hints alike."""
    from test_film_hints import SQUARE_FRAMES, decoded_rgb, full_px, square_film

    film = square_film(tmp_path / "reel.mkv")
    hints = tmp_path / "reel.hints.json"
    x, y = full_px(10 + 2 * 8 + 7, 32)
    hints.write_text(json.dumps({"points": [{"x": x, "y": y, "color": "#c03020", "radius": 8, "frame": 8}]}))
    args = lambda out, report: ["video", str(film), "-o", str(out), "--hints", str(hints), "--weights", str(hint_weights),  # noqa: E731
                                "--render-size", "64", "--codec", "ffv1", "--chunk-frames", "10", "--backend", "onnx", "--report", str(report)]
    single = CliRunner().invoke(main, args(tmp_path / "single.mkv", tmp_path / "single.json"))
    assert single.exit_code == 0, single.output
    run = in_loopback(sys.executable, "-m", "archivecolor", *args(tmp_path / "cluster.mkv", tmp_path / "cluster.json"), "--cluster", "local")
    assert run.returncode == 0, run.stderr[-3000:]
    assert np.array_equal(decoded_rgb(tmp_path / "cluster.mkv"), decoded_rgb(tmp_path / "single.mkv"))
    (one,), (many,) = (json.loads((tmp_path / f"{n}.json").read_text())["films"] for n in ("single", "cluster"))
    assert many["hints"] == one["hints"] and one["hints"]["shots"][0]["last_frame"] == SQUARE_FRAMES - 1
    hints.write_text("not JSON")
    bad = in_loopback(sys.executable, "-m", "archivecolor", *args(tmp_path / "bad.mkv", tmp_path / "bad.json"), "--cluster", "local")
    assert bad.returncode == 1 and "coloured without its hints" in bad.stderr
