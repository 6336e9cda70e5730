"""An attack on `folder` and `video`: bad inputs of many kinds, and kill-and-resume cycles.

Each kind of bad input goes into a folder of its own beside one good picture (or film), and
the real command runs on it as a user would (a subprocess, the embedded default model at
render size 64). A kind passes when: the exit code is what it should be (1 when something
failed, else 0), nothing printed a traceback or a decoding library's own line, a file that
fails is named on one `error:` line, the good input next to it is coloured, no source is
changed and no temporary or lock is left in the output. Then the kill cycles: `folder` on 60
photos SIGKILLed at random moments 20 times, and a chunked film 5 times, each re-run resuming;
the final outputs are compared with a clean run's.

    python benchmarks/attack.py [--kills 20] [--film-kills 5]

Prints a table per command: kinds tried and passed (with what failed), and for the kills the
outputs lost, corrupt, differing from the clean run, and left over.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archivecolor.video.ffmpeg import find_ffmpeg  # noqa: E402

STRAY = ("Traceback", "libpng", "Corrupt JPEG", "TiffTag", "OpenCV(", "[ERROR", "[ WARN", "LIBDEFLATE")
RENDER = ["--render-size", "64"]


def photo(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth colour picture (what a codec meets in a photo, not noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def encoded(ext: str, rgb: np.ndarray, **kw) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, {"jpg": "JPEG", "png": "PNG", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP", "gif": "GIF",
                                       "ppm": "PPM", "jp2": "JPEG2000"}[ext], **kw)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, colour: int = 0, depth: int = 8) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + png_chunk(b"IEND", b"")


def folder_kinds() -> list[tuple[str, str, object]]:
    """(kind, expectation, maker): maker(folder) puts the bad input there and returns its name.
    Expectation: 'fails' (named on one error line, exit 1), 'colours' (exit 0, coloured) or
    'left out' (exit 0, not coloured, counted)."""
    import cv2
    import tifffile

    rgb = photo(1)
    jpeg, png, tif = encoded("jpg", rgb), encoded("png", rgb), encoded("tif", rgb, compression="tiff_deflate")

    def put(name: str, data: bytes):
        def make(folder: Path) -> str:
            (folder / name).write_bytes(data)
            return name
        return make

    def flipped(data: bytes, at: int, value: int | None = None) -> bytes:
        out = bytearray(data)
        out[at] = value if value is not None else out[at] ^ 0xFF
        return bytes(out)

    def zeroed(data: bytes, start: int, stop: int) -> bytes:
        out = bytearray(data)
        out[start:stop] = bytes(stop - start)
        return bytes(out)

    def link_loop(folder):
        os.symlink("b.png", folder / "a.png")
        os.symlink("a.png", folder / "b.png")
        return "a.png"

    def dangling(folder):
        os.symlink("nowhere.png", folder / "dangling.png")
        return "dangling.png"

    def fifo(folder):
        os.mkfifo(folder / "pipe.png")
        return "pipe.png"

    def unix_socket(folder):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(folder / "sock.png"))
        sock.close()
        return "sock.png"

    def directory(folder):
        (folder / "album.jpg").mkdir()
        return "album.jpg"

    def long_name(folder):
        name = "x" * 246 + ".jpg"
        (folder / name).write_bytes(jpeg)
        return name

    def odd_bytes_name(folder):
        name = os.fsdecode(b"scan-\xff\xfe.jpg")
        (folder / name).write_bytes(jpeg)
        return name

    def newline_name(folder):
        (folder / "two\nlines.jpg").write_bytes(jpeg)
        return "two\nlines.jpg"

    def float_tiff(folder):
        tifffile.imwrite(folder / "float.tif", rgb.astype(np.float32))
        return "float.tif"

    def deep_png(folder):
        cv2.imwrite(str(folder / "deep.png"), (rgb.astype(np.uint16) * 257)[..., ::-1])
        return "deep.png"

    def multipage_broken(folder):
        buffer = io.BytesIO()
        with tifffile.TiffWriter(buffer) as writer:
            writer.write(rgb, compression="zlib")
            writer.write(rgb, compression="zlib")
        data = bytearray(buffer.getvalue())
        data[-200:-100] = bytes(100)  # the second page's data
        (folder / "pages.tif").write_bytes(bytes(data))
        return "pages.tif"

    def animated_gif(folder):
        from PIL import Image

        frames = [Image.fromarray(photo(s)) for s in range(3)]
        frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
        return "anim.gif"

    def animated_png(folder):
        from PIL import Image

        frames = [Image.fromarray(photo(s)) for s in range(3)]
        frames[0].save(folder / "anim.png", save_all=True, append_images=frames[1:], duration=100)
        return "anim.png"

    def cmyk_jpeg(folder):
        from PIL import Image

        Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
        return "cmyk.jpg"

    def grey_alpha(folder):
        from PIL import Image

        Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), "LA").save(folder / "la.png")
        return "la.png"

    def palette(folder):
        from PIL import Image

        Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png", transparency=0)
        return "palette.png"

    def bad_exif(folder):
        from PIL import Image

        exif = Image.Exif()
        exif[0x0112] = 9  # no such orientation
        exif[0x010E] = "x" * 40
        data = encoded("jpg", rgb, exif=exif.tobytes())
        (folder / "exif.jpg").write_bytes(zeroed(data, 40, 60))  # inside the EXIF block
        return "exif.jpg"

    def bad_icc(folder):
        (folder / "icc.jpg").write_bytes(encoded("jpg", rgb, icc_profile=b"not a profile" * 20))
        return "icc.jpg"

    def wide(folder):
        (folder / "strip.png").write_bytes(encoded("png", photo(3, 16, 4000)))
        return "strip.png"

    def dpx_truncated(folder):
        header = bytearray(2048)
        header[:4] = b"SDPX"
        (folder / "frame.dpx").write_bytes(bytes(header[:900]))
        return "frame.dpx"

    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1" + bytes(64)
    jp2 = encoded("jp2", rgb)
    return [
        ("empty JPEG", "fails", put("empty.jpg", b"")),
        ("text named .jpg", "fails", put("notes.jpg", b"these are notes, not a picture")),
        ("JPEG cut in half", "fails", put("half.jpg", jpeg[: len(jpeg) // 2])),
        ("JPEG with zeroed data", "colours", put("zeroed.jpg", zeroed(jpeg, 300, 380))),
        ("JPEG, EXIF damaged", "colours", bad_exif),
        ("JPEG, ICC profile garbage", "colours", bad_icc),
        ("CMYK JPEG", "colours", cmyk_jpeg),
        ("PNG header CRC wrong", "fails", put("crc.png", flipped(png, 29))),
        ("PNG colour type 7", "fails", put("type7.png", png_claiming(20, 20, colour=7))),
        ("PNG cut in half", "fails", put("half.png", png[: len(png) // 2])),
        ("PNG image data short, checksums right", "fails", put("short.png", png_claiming(200, 200))),
        ("PNG signature then garbage", "fails", put("garbage.png", b"\x89PNG\r\n\x1a\n" + b"rubbish" * 10)),
        ("PNG claiming 30000x30000", "fails", put("bomb.png", png_claiming(30000, 30000))),
        ("PNG 1x1", "fails", put("dot.png", encoded("png", rgb[:1, :1]))),
        ("PNG 16-bit", "colours", deep_png),
        ("PNG grey + alpha", "colours", grey_alpha),
        ("PNG palette + transparency", "colours", palette),
        ("animated PNG", "fails", animated_png),
        ("animated GIF", "fails", animated_gif),
        ("TIFF with a bad tag", "fails", put("badtag.tif", b"II*\x00\x08\x00\x00\x00\x01\x00" + bytes(20))),
        ("TIFF compressed data zeroed", "fails", put("zeroed.tif", zeroed(tif, 20, 80))),
        ("TIFF cut short", "fails", put("short.tif", tif[:60])),
        ("TIFF of floats", "fails", float_tiff),
        ("TIFF, second page damaged", "fails", multipage_broken),
        ("WebP cut in half", "fails", put("half.webp", encoded("webp", rgb)[:60])),
        ("BMP claiming 100000x100000", "fails", put("huge.bmp", encoded("bmp", rgb)[:18] + struct.pack("<ii", 100000, 100000)
                                                  + encoded("bmp", rgb)[26:])),
        ("HEIC header only", "fails", put("phone.heic", heic)),
        ("JPEG 2000 cut short", "fails", put("cut.jp2", jp2[: len(jp2) // 3])),
        ("DPX header cut short", "fails", dpx_truncated),
        ("PPM cut short", "fails", put("cut.ppm", encoded("ppm", rgb)[:100])),
        ("PNG data named .jpg", "colours", put("really-png.jpg", png)),
        ("JPEG data named .png", "colours", put("really-jpeg.png", jpeg)),
        ("4000x16 strip", "colours", wide),
        ("symlink loop", "fails", link_loop),
        ("dangling symlink", "fails", dangling),
        ("FIFO named .png", "fails", fifo),
        ("socket named .png", "fails", unix_socket),
        ("folder named .jpg", "left out", directory),
        ("246-byte file name", "colours", long_name),
        ("name that is not UTF-8", "colours", odd_bytes_name),
        ("name with a newline", "colours", newline_name),
        ("hidden file", "left out", put(".hidden.jpg", jpeg)),
        ("AppleDouble sidecar", "left out", put("._scan.jpg", b"\x00\x05\x16\x07" + bytes(60))),
        ("Thumbs.db", "left out", put("Thumbs.db", bytes(100))),
        ("a PDF", "left out", put("notes.pdf", b"%PDF-1.4\n")),
    ]


def tree_hash(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".") or path.name.startswith(".hidden"):
            try:
                out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                pass
    return out


def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archivecolor", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*") if p.name != ".hidden.jpg" and (p.suffix in (".part", ".lock") or ".part" in p.name
                                                                           or p.name.endswith(".lock") or p.name.endswith(".chunks"))]


def common_problems(proc: subprocess.CompletedProcess, expect: str) -> tuple[list[str], list[str]]:
    """What is wrong with any run's exit, whatever its input: ([problems], its error lines)."""
    wrong = []
    if proc.returncode != (1 if expect == "fails" else 0):
        wrong.append(f"exit {proc.returncode}")
    if any(s in proc.stderr for s in STRAY):
        wrong.append("stray library line or traceback")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    if expect != "fails" and errors:
        wrong.append(f"error line: {errors[0][:80]}")
    return wrong, errors


def attack_folder(work: Path) -> tuple[int, int, list[str]]:
    good = encoded("jpg", photo(7))
    problems, kinds = [], folder_kinds()
    for index, (kind, expect, make) in enumerate(kinds):
        src, out = work / f"f{index}", work / f"f{index}-out"
        src.mkdir()
        (src / "good.jpg").write_bytes(good)
        name = make(src)
        before = tree_hash(src)
        proc = run(["folder", str(src), "-o", str(out), *RENDER])
        line = " ".join(proc.stderr.split())
        wrong, errors = common_problems(proc, expect)
        shown = repr(name.encode("utf-8", "backslashreplace").decode("utf-8"))[1:-1]
        if expect == "fails" and not any(shown in l or name in l for l in errors):
            wrong.append("no error line naming it")
        if not (out / "good.jpg").exists():
            wrong.append("the good picture was not coloured")
        if expect == "colours" and not (out / name).exists():
            wrong.append("not coloured")
        if tree_hash(src) != before:
            wrong.append("a source changed")
        if leftovers(out):
            wrong.append(f"left over: {leftovers(out)}")
        if wrong:
            problems.append(f"{kind}: {'; '.join(wrong)} [{line[-160:]}]")
    return len(kinds), len(kinds) - len(problems), problems


def ffmpeg(*args: str) -> None:
    subprocess.run([find_ffmpeg(None), "-y", "-loglevel", "error", *args], check=True)


def film(path: Path, seconds: float = 2, size: str = "160x120", extra: tuple = ()) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}", "-f", "lavfi", "-i", f"sine=duration={seconds}",
           "-vf", "hue=s=0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", *extra, str(path))
    return path


def video_kinds(work: Path) -> list[tuple[str, str, object, tuple]]:
    """(kind, expectation, maker, extra options): maker(folder) returns the input to name."""
    base = film(work / "base.mp4", 4)
    faststart = work / "faststart.mp4"
    ffmpeg("-i", str(base), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()

    def put(name: str, payload: bytes):
        def make(folder: Path) -> list:
            (folder / name).write_bytes(payload)
            return [folder]
        return make

    def damaged(folder):
        out = bytearray(base.read_bytes())
        at = out.rfind(b"moov")
        out[len(out) // 3 : at - 100] = bytes(at - 100 - len(out) // 3)
        (folder / "damaged.mp4").write_bytes(bytes(out))
        return [folder]

    def audio_only(folder):
        ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(folder / "sound.mp4"))
        return [folder]

    def still(folder):
        (folder / "photo.mp4").write_bytes(encoded("jpg", photo(2)))
        return [folder]

    def link_loop(folder):
        os.symlink("b.mp4", folder / "a.mp4")
        os.symlink("a.mp4", folder / "b.mp4")
        return [folder]

    def fifo(folder):
        os.mkfifo(folder / "pipe.mp4")
        return [folder]

    def directory(folder):
        (folder / "reel.mp4").mkdir()
        return [folder]

    def numbered(folder):
        pics = folder / "box"
        pics.mkdir()
        for i in range(6):
            (pics / f"IMG_{i:04d}.jpg").write_bytes(encoded("jpg", photo(i)))
        return [pics, folder / "good.mp4"]

    def reel_frame(folder):
        reel = folder / "reel1"
        reel.mkdir()
        for i in range(4):
            (reel / f"reel1_{i:06d}.png").write_bytes(encoded("png", photo(i)))
        return [reel / "reel1_000002.png", folder / "good.mp4"]

    def deep(folder):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-vf", "hue=s=0", "-c:v", "prores_ks",
               "-pix_fmt", "yuv422p10le", str(folder / "master.mov"))
        return [folder]

    def variable_rate(folder):
        ffmpeg("-i", str(base), "-vf", "setpts='if(lt(N,40),PTS,PTS*2)'", "-fps_mode", "passthrough", "-c:v", "libx264",
               "-an", str(folder / "vfr.mkv"))
        return [folder]

    def odd_size(folder):
        film(folder / "odd.mp4", 1, "161x121")
        return [folder]

    def one_film(folder):
        shutil.copy(base, folder / "reel.mp4")
        return [folder / "reel.mp4"]

    def late_pictures(folder):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6", "-f", "lavfi", "-i", "sine=duration=6",
               "-vf", "hue=s=0,setpts=PTS+1/(25*TB)", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
               "-shortest", str(folder / "late.mp4"))
        return [folder]

    return [
        ("empty .mp4", "fails", put("empty.mp4", b""), ()),
        ("text named .mp4", "fails", put("notes.mp4", b"not a film at all"), ()),
        ("faststart MP4 cut at 50 %", "fails", put("cut50.mp4", data[: len(data) // 2]), ()),
        ("faststart MP4 cut at 90 %", "fails", put("cut90.mp4", data[: len(data) * 9 // 10]), ()),
        ("MP4 cut before its index", "fails", put("noindex.mp4", base.read_bytes()[: base.stat().st_size // 2]), ()),
        ("MP4 with its middle zeroed", "fails", damaged, ()),
        ("sound only", "fails", audio_only, ()),
        ("a JPEG named .mp4", "fails", still, ()),
        ("symlink loop in a folder", "fails", link_loop, ()),
        ("FIFO in a folder", "fails", fifo, ()),
        ("folder named .mp4", "left out", directory, ()),
        ("numbered photos, not a reel", "fails", numbered, ()),
        ("one frame of a reel", "fails", reel_frame, ()),
        ("output over the source", "fails", one_film, ("SAME",)),
        ("x264 into .webm", "fails", one_film, ("WEBM",)),
        ("10-bit ProRes master", "colours", deep, ("--codec", "prores_ks")),
        ("variable frame rate", "colours", variable_rate, ()),
        ("odd width and height", "colours", odd_size, ()),
        ("pictures a frame after the sound, chunked", "colours", late_pictures, ("--chunk-frames", "50")),
    ]


def attack_video(work: Path) -> tuple[int, int, list[str]]:
    good = film(work / "good-source.mp4", 1)
    problems, kinds = [], video_kinds(work)
    for index, (kind, expect, make, extra) in enumerate(kinds):
        src, out = work / f"v{index}", work / f"v{index}-out"
        src.mkdir()
        shutil.copy(good, src / "good.mp4")
        inputs = make(src)
        before = tree_hash(src)
        if extra == ("SAME",):
            options = ["-o", str(inputs[0])]
        elif extra == ("WEBM",):
            options = ["-o", str(out / "reel.webm")]
        else:
            options = ["-o", str(out), *extra]
        inputs = [str(i) for i in inputs]
        proc = run(["video", *inputs, *options, *RENDER, "--batch-size", "4"], timeout=600)
        wrong, errors = common_problems(proc, expect)
        if expect == "fails" and not errors:
            wrong.append("no error line")
        with_good = str(src) in inputs or str(src / "good.mp4") in inputs
        if with_good and options[1] == str(out) and not list(out.glob("good.*")):
            wrong.append("the good film was not coloured")
        if tree_hash(src) != before:
            wrong.append("a source changed")
        if out.exists() and leftovers(out):
            wrong.append(f"left over: {leftovers(out)}")
        if wrong:
            problems.append(f"{kind}: {'; '.join(wrong)} [{' '.join(proc.stderr.split())[-200:]}]")
    return len(kinds), len(kinds) - len(problems), problems


def decodable(path: Path) -> bool:
    from archivecolor.imageio import BadInput, read_stills

    try:
        read_stills(path)
        return True
    except BadInput:
        return False


def kill_cycles(command: list[str], out: Path, done_files, kills: int, rng: random.Random, wait_for: int = 1) -> int:
    """Start `command`, SIGKILL it (and its ffmpeg children) at a random moment once `wait_for`
    outputs exist, `kills` times; returns how many kills landed mid-run."""
    landed = 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-m", "archivecolor", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        start_count = len(done_files())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(done_files()) < start_count + wait_for:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 1.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            landed += 1
        proc.wait()
    return landed


def attack_kills(work: Path, kills: int, film_kills: int) -> list[tuple]:
    rng = random.Random(0)
    src = work / "photos"
    src.mkdir()
    for i in range(60):
        (src / f"p{i:02d}.png").write_bytes(encoded("png", photo(100 + i, 768, 1024)))
    clean, killed = work / "photos-clean", work / "photos-killed"
    options = ["--render-size", "256", "--batch-size", "1", "--jobs", "1"]  # slow enough for a kill to land mid-run
    assert run(["folder", str(src), "-o", str(clean), *options], timeout=1200).returncode == 0
    command = ["folder", str(src), "-o", str(killed), *options]
    landed = kill_cycles(command, killed, lambda: list(killed.glob("p*.png")), kills, rng)
    final = run(command, timeout=1200)
    want, got = tree_hash(clean), tree_hash(killed)
    names = [n for n in want if n.endswith(".png")]
    rows = [("folder", kills, landed, final.returncode, sum(n not in got for n in names),
             sum(n in got and not decodable(killed / n) for n in names), sum(n in got and got[n] != want[n] for n in names),
             len(leftovers(killed)))]

    reel = film(work / "reel.mp4", 24, "320x240", ("-g", "25"))
    clean_film, killed_film = work / "film-clean.mp4", work / "film-killed.mp4"
    film_options = [*RENDER, "--chunk-frames", "40", "--codec", "ffv1"]
    clean_film, killed_film = clean_film.with_suffix(".mkv"), killed_film.with_suffix(".mkv")
    assert run(["video", str(reel), "-o", str(clean_film), *film_options], timeout=600).returncode == 0
    work_folder = work / f".{killed_film.name}.chunks"
    chunks = lambda: list(work_folder.glob("chunk-*.mkv")) if work_folder.exists() else []
    landed = kill_cycles(["video", str(reel), "-o", str(killed_film), *film_options], work, chunks, film_kills, rng)
    final = run(["video", str(reel), "-o", str(killed_film), *film_options], timeout=600)
    same = killed_film.exists() and frames_of(killed_film) == frames_of(clean_film)
    left = [p.name for p in work.glob(f".{killed_film.name}*")]
    rows.append(("video (chunked film)", film_kills, landed, final.returncode, int(not killed_film.exists()),
                 int(killed_film.exists() and not frames_of(killed_film)), int(killed_film.exists() and not same), len(left)))
    return rows


def frames_of(path: Path) -> list[str]:
    import av

    try:
        with av.open(str(path)) as container:
            return [hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in container.decode(video=0)]
    except Exception:
        return []


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())
    return f"{cpu}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--film-kills", type=int, default=5)
    parser.add_argument("--only", choices=["folder", "video", "kills"], default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}; command: python benchmarks/attack.py {' '.join(sys.argv[1:])}".rstrip())
    with tempfile.TemporaryDirectory(prefix="attack-") as tmp:
        work = Path(tmp)
        for name, attack in (("folder", attack_folder), ("video", attack_video)):
            if args.only not in (None, name):
                continue
            started = time.perf_counter()
            (work / name).mkdir()
            tried, passed, problems = attack(work / name)
            print(f"\n{name}: {passed} of {tried} kinds of bad input handled ({time.perf_counter() - started:.0f} s)")
            for problem in problems:
                print(f"  FAILED {problem}")
        if args.only in (None, "kills"):
            (work / "kills").mkdir()
            rows = attack_kills(work / "kills", args.kills, args.film_kills)
            print("\n| run | kills | landed mid-run | final exit | outputs lost | corrupt | differing from a clean run | left over |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for row in rows:
                print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
