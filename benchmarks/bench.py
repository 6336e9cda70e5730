"""archivecolor benchmarks: how fast, against the machine's limit, and how cost grows.

    python benchmarks/bench.py                     # everything (about 10 minutes on 2 CPU cores)
    python benchmarks/bench.py ceiling model       # only some sections
    python benchmarks/bench.py --weights W.safetensors --json results.json
    python benchmarks/bench.py pipelines --data DIR  # the development data elsewhere than ../shared/data

Sections:
  ceiling    measured matmul rate (fp32, bf16) and the model's FLOPs per image -> best possible images/s
  versus     model-only images/s of the default model against --against (onnxruntime fp32, render 256/512, batch 1/8)
  model      model-only images/s per backend (torch eager, channels_last, compiled; onnxruntime; bf16),
             render sizes 256 and 512, batch 1/4/8, as a share of the ceiling
  pipelines  `folder` on real photos and `video` on a 720p clip end to end, against model-only at the
             same render size; ffmpeg decode+encode alone (the I/O ceiling); `video` on the clip's
             frames as a 16-bit TIFF image sequence
  scaling    peak RSS and time: a clip and the same clip 10× longer; a 24-megapixel 16-bit scan
  scans      archive masters: four 24 MP 16-bit grey TIFF scans through `folder` (time, output size,
             peak RSS) and one scan's stages on one thread (decode, L*, network, recombine, encode)
  gpu        model-only per GPU backend (torch fp16 channels_last, torch.compile with CUDA graphs,
             onnxruntime CUDA and TensorRT where installed) over batch 1-64, and the batch that
             saturates the GPU (skipped without CUDA; run once, on a lent H100: see the README)
  cluster    `folder --cluster` on a local Ray instance with 1 and 2 model actors against the
             single-machine run: images/s and the per-image overhead Ray adds (Ray runs inside a
             loopback-only network namespace where one can be made; needs archivecolor[cluster])

Figures are printed, never asserted: targets live here, not in tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS: dict = {}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_edge=False)
    for c in columns:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in r])
    Console().print(t)
    RESULTS[title] = [dict(zip(columns, r)) for r in rows]


def timed_rate(fn, items_per_call: int, seconds: float = 3.0, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += items_per_call
    return n / (time.perf_counter() - start)


def weights_path(arg: str | None) -> Path:
    from archivecolor.weights import default_weights_path

    if arg:
        return Path(arg)
    default = default_weights_path()
    if default is not None:
        return default
    # No packaged model: benchmark a random generator of the default model's shape.
    from archivecolor.nets import GeneratorConfig, UNetGenerator
    from archivecolor.weights import save_generator

    path = Path(tempfile.mkdtemp()) / "random-width32.safetensors"
    save_generator(path, UNetGenerator(GeneratorConfig(width=32, upsample="resize", dropout=0.0)).eval())
    print(f"(no packaged default model: timing a random width-32 generator of the same shape, {path})")
    return path


# --- ceiling ---------------------------------------------------------------------------------
def matmul_rate(dtype, size=2048, seconds=3.0) -> float:
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    return timed_rate(lambda: a @ b, 1, seconds) * 2 * size**3


def model_flops(weights: Path, render: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from archivecolor.weights import load_generator

    g = load_generator(weights)
    h, w = render, render * 3 // 2  # a 3:2 photo at the render size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        g(torch.zeros(1, 1, h, w))
    return float(counter.get_total_flops())


def section_ceiling(weights: Path) -> dict:
    # the best of two sizes: small products leave the cores idle between calls
    from archivecolor.backends import bf16_emulated_warning

    fp32 = max(matmul_rate(torch.float32, size) for size in (2048, 4096))
    print(f"  fp32 matmul: {fp32 / 1e9:.1f} GFLOP/s", flush=True)
    if bf16_emulated_warning("cpu"):  # emulated bf16: a 4096² product took over 12 minutes on an AVX2-only EPYC
        print("  bf16 matmul: skipped (this CPU has no bfloat16 instructions; torch would emulate it)", flush=True)
        bf16 = float("nan")
    else:
        bf16 = max(matmul_rate(torch.bfloat16, size, seconds=2.0) for size in (1024, 2048))
        print(f"  bf16 matmul: {bf16 / 1e9:.1f} GFLOP/s", flush=True)
    rows, ceilings = [], {}
    for render in (256, 512):
        flops = model_flops(weights, render)
        ceilings[render] = {"fp32": fp32 / flops, "bf16": bf16 / flops}
        rows.append([render, f"{render}×{render * 3 // 2}", flops / 1e9, fp32 / 1e9, fp32 / flops, bf16 / 1e9, bf16 / flops])
    table("ceiling", ["render", "input", "GFLOP/image", "fp32 GFLOP/s", "fp32 best img/s", "bf16 GFLOP/s", "bf16 best img/s"], rows)
    return ceilings


# --- model-only --------------------------------------------------------------------------------
class _TorchVariant:
    """torch fp32 on the CPU in channels_last, optionally through torch.compile (inductor): the
    variants the product does not ship, timed to show where they stand against onnxruntime."""

    def __init__(self, weights: Path, compiled: bool):
        from archivecolor.weights import load_generator

        self.model = load_generator(weights).to(memory_format=torch.channels_last)
        if compiled:
            self.model = torch.compile(self.model)
        self.name = "torch cpu fp32 channels_last" + (" + torch.compile" if compiled else "")

    @torch.inference_mode()
    def run(self, l_net: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(l_net).contiguous(memory_format=torch.channels_last)
        return self.model(x).contiguous().numpy()


def section_model(weights: Path, ceilings: dict | None) -> dict:
    from archivecolor.backends import open_backend

    backends = {
        "torch fp32": lambda: open_backend("torch", weights, device="cpu", precision="fp32").backend,
        "torch fp32 channels_last": lambda: _TorchVariant(weights, compiled=False),
        "torch fp32 compiled": lambda: _TorchVariant(weights, compiled=True),
        "torch bf16": lambda: open_backend("torch", weights, device="cpu", precision="bf16").backend,
        "onnxruntime fp32": lambda: open_backend("onnx", weights, device="cpu").backend,
        "auto": lambda: open_backend("auto", weights).backend,
    }
    rows, best = [], {}
    for name, make in backends.items():
        backend = make()
        for render in ((256,) if "compiled" in name else (256, 512)):  # each shape compiles anew (~25 s on 2 cores)
            for batch in (1, 4, 8):
                x = np.random.default_rng(0).uniform(-1, 1, (batch, 1, render, render * 3 // 2)).astype(np.float32)
                rate = timed_rate(lambda: backend.run(x), batch, seconds=2.0 if render == 256 else 3.0, warmup=1)
                precision = "bf16" if "bf16" in name else "fp32"
                share = rate / ceilings[render][precision] if ceilings else float("nan")
                rows.append([f"{name} ({backend.name})", render, batch, rate, share])
                best[(render, name)] = max(best.get((render, name), 0.0), rate)
    table("model-only (images/s; share of the matmul ceiling)", ["backend", "render", "batch", "images/s", "of ceiling"], rows)
    bf16_colour_difference(weights)
    return best


def section_versus(weights: Path, against: Path, rounds: int = 5) -> None:
    """The default model against another generator (the one it replaced), onnxruntime fp32 on this
    CPU: images/s at render 256 and 512, batch 1 and 8, and the ratio. The two are timed in
    alternating 1-second rounds and the medians reported, with the ratio's range over the rounds:
    one 3-second turn each, one after the other, gave ratios from 1.43 to 1.91 in three runs on
    idle cores."""
    import statistics

    from archivecolor.backends import open_backend

    backends = [open_backend("onnx", path, device="cpu").backend for path in (weights, against)]
    rows = []
    for render in (256, 512):
        for batch in (1, 8):
            x = np.random.default_rng(0).uniform(-1, 1, (batch, 1, render, render * 3 // 2)).astype(np.float32)
            for backend in backends:  # first calls at this shape (allocations) out of the rounds
                timed_rate(lambda: backend.run(x), batch, seconds=0.0, warmup=1)
            per_round = [[timed_rate(lambda: backend.run(x), batch, seconds=1.0, warmup=0) for backend in backends]
                         for _ in range(rounds)]
            ratios = sorted(a / b for a, b in per_round)
            rows.append([render, batch, statistics.median(a for a, _ in per_round), statistics.median(b for _, b in per_round),
                         statistics.median(ratios), f"{ratios[0]:.2f}-{ratios[-1]:.2f}"])
    table(f"model-only, onnxruntime fp32: {weights.name} against {against} (medians of {rounds} alternating rounds)",
          ["render", "batch", "images/s", "against: images/s", "ratio", "ratio range"], rows)


def bf16_colour_difference(weights: Path) -> None:
    """How far bf16 moves the colours from fp32, on real photos' luminance when available."""
    from archivecolor.backends import open_backend
    from archivecolor.engine import EngineProfile, parity, sample_inputs

    fp32 = open_backend("torch", weights, device="cpu", precision="fp32").backend
    bf16 = open_backend("torch", weights, device="cpu", precision="bf16").backend
    photos = sorted((SHARED / "eval" / "bsd100").glob("*.png"))[:16]
    if photos:
        import cv2

        from archivecolor.lab import normalize_l, srgb_to_lab

        planes = [cv2.resize(srgb_to_lab(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))[..., 0], (384, 256), interpolation=cv2.INTER_AREA)
                  for p in photos if cv2.imread(str(p)).shape[1] > cv2.imread(str(p)).shape[0]]
        l_net = normalize_l(np.stack(planes)[:, None]).astype(np.float32)
        source = f"{len(planes)} BSD100 photos"
    else:
        l_net = sample_inputs(EngineProfile(opt_height=256, opt_width=384), count=8)
        source = "8 smooth random fields"
    figures = parity(bf16, fp32, l_net)
    table("bf16 against fp32 (Lab units)", ["input", "mean ΔE2000", "max |Δab|"], [[source, figures["mean_delta_e2000"], figures["max_abs_ab"]]])


# --- pipelines ---------------------------------------------------------------------------------
def photo_set(count: int) -> Path:
    folder = Path(tempfile.mkdtemp()) / "photos"
    folder.mkdir()
    sources = sorted((SHARED / "eval" / "bsd100").glob("*.png")) + sorted((SHARED / "train" / "caltech101").glob("*/*.jpg"))[::70]
    import cv2

    for i, src in enumerate(sources[:count]):
        grey = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2GRAY)
        cv2.imwrite(str(folder / f"{i:04d}{src.suffix}"), grey)
    return folder


def section_pipelines(weights: Path, model_best: dict | None) -> None:
    from archivecolor.backends import open_backend
    from archivecolor.colorizer import Colorizer
    from archivecolor.folder import FolderConfig, colorize_folder
    from archivecolor.imageio import read_stills
    from archivecolor.render import full_luminance
    from archivecolor.video.ffmpeg import EncodeOptions, find_ffmpeg, probe
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.film import colorize_video

    rows, limits = [], []
    backend = open_backend("auto", weights).backend
    colorizer = Colorizer(backend, render_size=256)
    if SHARED.exists():
        # Model-only is the network on these very photos' prepared inputs (their mix of shapes and
        # part-filled batches), so the ratio charges the pipeline only for what it adds. Each is
        # the median of three runs after a warm-up pass over every shape.
        photos = photo_set(200)
        jobs = [colorizer.prepare(full_luminance(read_stills(path)[0].pixels)) for path in sorted(photos.iterdir())]
        colorizer.predict(jobs, 8)
        model_rates, folder_rates = [], []
        for run in range(3):
            started = time.perf_counter()
            colorizer.predict(jobs, 8)
            model_rates.append(len(jobs) / (time.perf_counter() - started))
            report = colorize_folder(photos, photos.parent / f"out{run}", colorizer, FolderConfig(batch_size=8))
            folder_rates.append(report.images_per_s)
        model_rate, folder_rate = float(np.median(model_rates)), float(np.median(folder_rates))
        rows.append(["folder, 200 real photos", backend.name, folder_rate, model_rate, folder_rate / model_rate])
        shutil.rmtree(photos.parent, ignore_errors=True)
    clip = SHARED / "video" / "cockatoo.mp4"
    if clip.exists():
        work = Path(tempfile.mkdtemp())
        ffmpeg = find_ffmpeg()
        grey = work / "grey.mp4"
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(clip), "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "18", "-c:a", "copy", str(grey)], check=True)
        info = probe(grey)
        h, w = info.display_hw
        l_net = colorizer.prepare(np.zeros((h, w), np.float32)).l_net  # the frames' own padded network shape
        x = np.repeat(l_net[None], 8, axis=0) + np.random.default_rng(0).uniform(-1, 1, (8, *l_net.shape)).astype(np.float32)
        video_model_rate = timed_rate(lambda: backend.run(x), 8, 5.0, 3)
        # x264's preset is the video pipeline's biggest cost after the network: the default
        # (medium) and a fast one, each beside ffmpeg's decode + encode alone at that preset.
        for preset in ("medium", "veryfast"):
            config = VideoConfig(batch_size=8, encode=EncodeOptions(preset=preset))
            result = colorize_video(grey, work / f"out-{preset}.mp4", colorizer, config)
            rows.append([f"video {w}×{h}, {result.frames} frames, x264 {preset}", backend.name, result.frames_per_s,
                         video_model_rate, result.frames_per_s / video_model_rate])
            started = time.perf_counter()
            decode = subprocess.Popen([ffmpeg, "-loglevel", "error", "-i", str(grey), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                                      stdout=subprocess.PIPE)
            subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                            "-framerate", str(info.rate), "-i", "pipe:", "-c:v", "libx264", "-crf", "18", "-preset", preset,
                            "-pix_fmt", "yuv420p", str(work / "io.mp4")], stdin=decode.stdout, check=True)
            decode.wait()
            io_rate = result.frames / (time.perf_counter() - started)
            rows.append([f"ffmpeg decode + encode only, {w}×{h}, x264 {preset}", "ffmpeg", io_rate, float("nan"), float("nan")])
            slower = "ffmpeg decode + encode" if io_rate < video_model_rate else "the network"
            limits.append([preset, result.frames_per_s, video_model_rate, io_rate, slower])
        rows.append(sequence_row(grey, work, ffmpeg, colorizer, backend.name, video_model_rate, w, h))
        shutil.rmtree(work, ignore_errors=True)
    table("pipelines end to end (render size 256)", ["pipeline", "backend", "items/s", "model-only items/s", "ratio"], rows)
    if limits:
        # On a GPU the network and ffmpeg run on different hardware: the slower one alone bounds
        # video. On a CPU they share the cores and their costs add up instead.
        table(f"what limits video ({backend.name})", ["x264 preset", "video frames/s", "network alone", "ffmpeg alone", "slower alone"], limits)


SEQUENCE_FRAMES = 120


def sequence_row(grey_clip: Path, work: Path, ffmpeg: str, colorizer, backend_name: str, model_rate: float, w: int, h: int) -> list:
    """`video` on a film scanner's image sequence: the clip's first frames as 16-bit grey TIFFs
    (deflate), read, colorized, smoothed and written back as 16-bit RGB TIFFs."""
    from archivecolor.video.config import VideoConfig
    from archivecolor.video.sequence import colorize_sequence, find_sequence

    reel = work / "reel"
    reel.mkdir()
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(grey_clip), "-frames:v", str(SEQUENCE_FRAMES), "-pix_fmt", "gray16le",
                    "-compression_algo", "deflate", str(reel / "reel_%06d.tif")], check=True)
    result = colorize_sequence(find_sequence(reel), work / "reel-colorized", colorizer, VideoConfig(batch_size=8))
    return [f"video on an image sequence, {w}×{h}, {result.frames} 16-bit TIFF frames", backend_name, result.frames_per_s,
            model_rate, result.frames_per_s / model_rate]


# --- cluster -----------------------------------------------------------------------------------
CLUSTER_PHOTOS = 200


def section_cluster(weights: Path) -> None:
    """Re-runs this script inside a loopback-only network namespace (as root), so Ray never
    binds or connects beyond this machine; elsewhere it runs here with a note."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        print('cluster: skipped (pip install "archivecolor[cluster]")')
        return
    if not SHARED.exists():
        print("cluster: skipped (needs ../shared/data for real photos)")
        return
    photos = photo_set(CLUSTER_PHOTOS)
    figures = photos.parent / "cluster.json"
    inner = [sys.executable, __file__, "cluster-inner", "--weights", str(weights), "--json", str(figures), "--photos", str(photos)]
    namespace = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    if shutil.which("unshare") and subprocess.run(namespace + ["true"], capture_output=True).returncode == 0:
        subprocess.run(namespace + inner, check=True, env=env)
    else:
        print("(no loopback-only namespace could be made: Ray runs on this machine's own network)")
        subprocess.run(inner, check=True, env=env)
    RESULTS.update(json.loads(figures.read_text()))
    shutil.rmtree(photos.parent, ignore_errors=True)


def section_cluster_inner(weights: Path, photos: Path) -> None:
    import logging

    import ray

    from archivecolor.backends import open_backend
    from archivecolor.cluster import ClusterConfig, ModelSpec
    from archivecolor.cluster.folder import colorize_folder_on_cluster
    from archivecolor.colorizer import Colorizer
    from archivecolor.folder import FolderConfig, colorize_folder

    config = FolderConfig(batch_size=8)
    work = photos.parent
    single = colorize_folder(photos, work / "single", Colorizer(open_backend("onnx", weights).backend), config)
    rows = [["one machine (threads)", "", single.images, single.seconds, single.images_per_s, 0.0]]
    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    start_seconds = time.perf_counter() - started
    for actors, cpus in ((1, 1.0), (2, 0.5)):
        out = work / f"cluster-{actors}"
        report = colorize_folder_on_cluster(photos, out, ModelSpec(str(weights), "onnx", "cpu", "fp32"), config,
                                            ClusterConfig(actors=actors, cpus_per_actor=cpus))
        overhead_ms = 1000 * (report.seconds - single.seconds) / max(1, report.images)
        rows.append([f"Ray Data, {os.cpu_count()} CPUs", f"{actors} × {cpus:g} CPU", report.images, report.seconds, report.images_per_s, overhead_ms])
        shutil.rmtree(out, ignore_errors=True)
    ray.shutdown()
    print(f"(starting the local Ray instance took {start_seconds:.1f} s, not counted below)")
    table(f"folder on {CLUSTER_PHOTOS} real photos, one machine vs a local Ray cluster (render 256, onnxruntime)",
          ["run", "model actors", "images", "seconds", "images/s", "overhead ms/image"], rows)


# --- scaling -----------------------------------------------------------------------------------
def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """Run a command; (seconds, its peak RSS in MB)."""
    started = time.perf_counter()
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, int(out.stdout.strip()) / 1024


def section_scaling(weights: Path) -> None:
    from archivecolor.video.ffmpeg import find_ffmpeg

    rows = []
    work = Path(tempfile.mkdtemp())
    ffmpeg = find_ffmpeg()
    clip = SHARED / "video" / "box.mp4"
    cli = [sys.executable, "-m", "archivecolor"]
    if clip.exists():
        short = work / "short.mp4"
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(clip), "-t", "4", "-vf", "hue=s=0", "-c:v", "libx264", "-c:a", "copy", str(short)], check=True)
        listing = work / "list.txt"
        listing.write_text("".join(f"file '{short}'\n" for _ in range(10)))
        long = work / "long.mp4"
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(long)], check=True)
        for name, path in (("clip, 4 s", short), ("same clip ×10, 40 s", long)):
            seconds, rss = peak_rss_of(cli + ["video", str(path), "--out", str(work / f"out-{path.name}"), "--weights", str(weights), "--overwrite"])
            rows.append([name, seconds, rss])
    scan_dir = work / "scan"
    scan_dir.mkdir()
    y, x = np.mgrid[0:4000, 0:6000]
    scan = ((np.sin(x / 90.0) + np.cos(y / 70.0)) * 16000 + 32768).astype(np.uint16)
    import cv2

    cv2.imwrite(str(scan_dir / "scan24mp.png"), scan)
    del y, x, scan
    seconds, rss = peak_rss_of(cli + ["folder", str(scan_dir), "--out", str(work / "scan-out"), "--weights", str(weights)])
    rows.append(["24 MP 16-bit scan (6000×4000 PNG)", seconds, rss])
    table("scaling (peak RSS of the whole command)", ["job", "seconds", "peak RSS MB"], rows)
    shutil.rmtree(work, ignore_errors=True)


def archive_scans(folder: Path, count: int = 4) -> list[Path]:
    """`count` 24 MP 16-bit grey TIFF scans as archives hold them: BSD100 photos scaled to 6000 × 4000
    with seeded film grain (σ = 150 of 65 535), deflate with predictor (what a scanner writes)."""
    import cv2
    import tifffile

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, src in enumerate(sorted((SHARED / "eval" / "bsd100").glob("*.png"))[:count]):
        grey = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        grey = grey.T if grey.shape[0] > grey.shape[1] else grey
        big = cv2.resize(grey.astype(np.float32) * 257, (6000, 4000), interpolation=cv2.INTER_CUBIC)
        big += rng.normal(0, 150, big.shape).astype(np.float32)
        paths.append(folder / f"scan{i}.tif")
        tifffile.imwrite(paths[-1], np.clip(big, 0, 65535).astype(np.uint16), compression="zlib", predictor=True)
    return paths


def section_scans(weights: Path) -> None:
    """Archive masters: 16-bit TIFF scans through `folder` end to end, and one scan's stages on one thread."""
    from archivecolor.backends import open_backend
    from archivecolor.colorizer import Colorizer
    from archivecolor.imageio import encode_tiff_pages, read_stills
    from archivecolor.render import full_luminance, recombine_into

    work = Path(tempfile.mkdtemp())
    scans = archive_scans(work / "scans")
    cli = [sys.executable, "-m", "archivecolor", "folder", str(work / "scans"), "--out", str(work / "out"), "--weights", str(weights)]
    seconds, rss = peak_rss_of(cli)
    written = sum(p.stat().st_size for p in (work / "out").glob("*.tif")) / 1e6
    table("`folder` on four 24 MP 16-bit grey TIFF scans -> 16-bit RGB TIFF", ["seconds", "s a scan", "output MB", "peak RSS MB"],
          [[seconds, seconds / len(scans), written, rss]])
    colorizer = Colorizer(open_backend("auto", weights).backend, 256)
    clock, stages = time.perf_counter(), {}

    def stage(name):
        nonlocal clock
        stages[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    still = read_stills(scans[0])[0]
    stage("decode")
    L = full_luminance(still.pixels, still.metadata.icc)
    stage("L*")
    job = colorizer.prepare(L)
    colorizer.predict([job])
    stage("network")
    rgb = np.empty((*L.shape, 3), np.uint16)
    recombine_into(rgb, L, job.ab, job.L_render)
    stage("recombine")
    encode_tiff_pages([(rgb, still.metadata)])
    stage("TIFF encode")
    table("one 24 MP 16-bit scan's stages, one thread (seconds)", list(stages), [list(stages.values())])
    shutil.rmtree(work, ignore_errors=True)


# --- GPU ---------------------------------------------------------------------------------------
GPU_BATCHES = (1, 2, 4, 8, 16, 32, 64)
GPU_SHAPES = ((256, 384), (512, 768))  # render 256 and 512, a 3:2 photo padded to the network multiple
SATURATION_SHARE = 0.95  # the batch that saturates the GPU: the smallest within 5 % of the best rate


def saturating_batch(rates: dict[int, float]) -> int:
    best = max(rates.values())
    return min(batch for batch, rate in rates.items() if rate >= SATURATION_SHARE * best)


def gpu_backends(weights: Path, device: str):
    """(label, open_backend(), shapes, batches) for every GPU backend this machine has, quickest to build first."""
    from archivecolor.backends import open_backend

    precision = "fp16" if device.startswith("cuda") else "bf16"  # bf16: the CPU smoke run of this code
    batches = GPU_BATCHES if device.startswith("cuda") else GPU_BATCHES[:2]
    yield (f"torch {precision} channels_last", lambda: open_backend("torch", weights, device=device, precision=precision).backend,
           GPU_SHAPES, batches)

    def compiled():
        backend = open_backend("torch", weights, device=device, precision=precision).backend
        # CUDA graphs through torch.compile; every new shape compiles again, so fewer of them.
        backend.model = torch.compile(backend.model, mode="reduce-overhead")
        return backend

    yield f"torch {precision} compiled (CUDA graphs)", compiled, GPU_SHAPES[:1], batches[::3]
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        yield "onnxruntime CUDA fp32", lambda: open_backend("onnx", weights, device=device).backend, GPU_SHAPES[:1], batches
    if importlib.util.find_spec("tensorrt") is None:
        print("gpu: no TensorRT here; its rows are skipped")
        return

    def tensorrt():
        engines = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "archivecolor", "build-engine", "--weights", str(weights), "--out", str(engines),
                        "--render-size", "256", "--max-batch", str(max(GPU_BATCHES))], check=True)
        return open_backend("tensorrt", weights, engine=next(engines.glob("*.engine"))).backend

    yield "TensorRT fp16", tensorrt, GPU_SHAPES[:1], batches


def section_gpu(weights: Path, device: str = "cuda") -> None:
    """Model-only rates per GPU backend over a batch sweep, and the batch that saturates the GPU.

    Host to host (numpy in, numpy out), as the pipelines use it. The pipelines section run on a
    GPU machine uses `auto` (TensorRT, else torch fp16) and says whether ffmpeg or the network
    limits `video` there.
    """
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu: skipped (no CUDA GPU)")
        return
    if device == "cuda":
        RESULTS["gpu"] = torch.cuda.get_device_name(0)
        print(f"gpu: {RESULTS['gpu']}")
    rows, saturation = [], []
    for label, opener, shapes, batches in gpu_backends(weights, device):
        try:  # a first run on a new GPU: one backend that fails must not cost the others' figures
            backend = opener()
            for h, w in shapes:
                rates = {}
                for batch in batches:
                    x = np.random.default_rng(0).uniform(-1, 1, (batch, 1, h, w)).astype(np.float32)
                    rates[batch] = timed_rate(lambda: backend.run(x), batch, 2.0, 3)
                    rows.append([label, f"{h}×{w}", batch, rates[batch]])
                    print(f"gpu: {label}, {h}×{w}, batch {batch}: {rates[batch]:.1f} images/s", flush=True)  # kept if a time limit cuts the run
                best = saturating_batch(rates)
                saturation.append([label, f"{h}×{w}", best, rates[best], max(rates.values())])
        except Exception as exc:
            print(f"gpu: {label} failed: {type(exc).__name__}: {exc}")
    table("GPU model-only (host to host, images/s)", ["backend", "network input", "batch", "images/s"], rows)
    table("batch that saturates the GPU (smallest within 5 % of the best)", ["backend", "network input", "batch", "images/s", "best images/s"],
          saturation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", default=["ceiling", "model", "pipelines", "scaling", "scans", "gpu", "cluster"])
    parser.add_argument("--weights", default=None, help="generator to time (default: the packaged model)")
    parser.add_argument("--against", default=None, help="versus: the generator to compare with, e.g. the model the default replaced "
                        "(git show d1be92e:archivecolor/models/default.safetensors > old.safetensors)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--photos", default=None, help=argparse.SUPPRESS)  # cluster-inner: the photo folder
    parser.add_argument("--data", default=None, help="the development data folder (default: ../shared/data beside the repository)")
    parser.add_argument("--gpu-device", default="cuda", help=argparse.SUPPRESS)  # cpu: a smoke run of the gpu section's code
    args = parser.parse_args()
    if args.data:
        global SHARED
        SHARED = Path(args.data).resolve()
    weights = weights_path(args.weights)
    if args.sections == ["cluster-inner"]:  # the cluster section, re-run inside its network namespace
        section_cluster_inner(weights, Path(args.photos))
        Path(args.json).write_text(json.dumps({k: v for k, v in RESULTS.items()}, default=str))
        return
    print(f"machine: {machine()}")
    RESULTS["machine"] = machine()
    ceilings = section_ceiling(weights) if "ceiling" in args.sections else None
    best = section_model(weights, ceilings) if "model" in args.sections else None
    if "versus" in args.sections:
        if not args.against:
            parser.error("versus needs --against OTHER.safetensors")
        section_versus(weights, Path(args.against))
    if "pipelines" in args.sections:
        section_pipelines(weights, best)
    if "scaling" in args.sections:
        section_scaling(weights)
    if "scans" in args.sections:
        section_scans(weights)
    if "gpu" in args.sections:
        section_gpu(weights, args.gpu_device)
    if "cluster" in args.sections:
        section_cluster(weights)
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=1, default=str))


if __name__ == "__main__":
    main()
