"""Shared fixtures: tiny real colour photos from ../shared/data when present, else synthetic ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_photo(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A smooth, colourful RGB uint8 image: gradients of random hues plus a few blobs."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0, 1, 3)
    slope = rng.uniform(-1, 1, (2, 3))
    img = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1, 3)
        mask = ((x - cx) ** 2 + (y - cy) ** 2) < (0.1 + 0.2 * r) ** 2
        img[mask] = rng.uniform(0, 1, 3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def disk_that_fills(after: int, write):
    """`write` (an atomic_write_bytes) until `after` files are written, then ENOSPC, as a full disk does."""
    import errno

    written = []

    def fill(path, data):
        if len(written) >= after:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)
        written.append(path)

    return fill


def film_zeroed_midway(path: Path, size: str, seconds: int) -> Path:
    """A grey x264 film whose second half is zeroed, its index (moov) intact: it decodes short."""
    import subprocess

    from archivecolor.video.ffmpeg import find_ffmpeg

    subprocess.run([find_ffmpeg(None), "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
                    "-vf", "hue=s=0", "-c:v", "libx264", "-g", "250", "-pix_fmt", "yuv420p", str(path)], check=True)
    data = bytearray(path.read_bytes())
    index = data.rfind(b"moov")
    data[len(data) // 2 : index - 100] = bytes(index - 100 - len(data) // 2)
    path.write_bytes(bytes(data))
    return path


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    """A small folder tree of colour photos (real ones from shared/data when available)."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    real = sorted((SHARED_DATA / "train" / "caltech101").glob("*/*.jpg"))[::400][:12] if SHARED_DATA.exists() else []
    for i, src in enumerate(real):
        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (64, 48), interpolation=cv2.INTER_AREA)
        write_rgb(root / "real" / f"r{i}.png", rgb)
    for i in range(16 - len(real)):
        write_rgb(root / "synthetic" / f"s{i}.jpg", synthetic_photo(rng, 48))
    return root


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random generator (width 8, depth 4): fast, deterministic, colourful enough to test with."""
    import torch

    from archivecolor.nets import GeneratorConfig, UNetGenerator
    from archivecolor.weights import save_generator

    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(width=8, depth=4, dropout=0.0))
    generator.train()
    with torch.no_grad():
        for _ in range(2):
            generator(torch.randn(4, 1, 32, 32))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(path, generator.eval())
    return path


@pytest.fixture(scope="session")
def hint_weights(tmp_path_factory) -> Path:
    """A small random generator that takes hints (its hint channels have random weights, so hints change its colour)."""
    import torch

    from archivecolor.nets import GeneratorConfig, UNetGenerator
    from archivecolor.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "hinted.safetensors"
    save_generator(path, UNetGenerator(GeneratorConfig(width=8, depth=4, dropout=0.0, hint_channels=3)).eval())
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the ONNX export cache of the tests out of the user's home."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
