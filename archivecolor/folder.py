"""`archivecolor folder`: scan -> skip done -> decode -> batch -> infer -> recombine -> write.

Decoding and encoding run on thread pools (OpenCV and numpy release the GIL) while the main
thread feeds the network, with bounded windows between the stages so memory does not grow
with the archive. Every output is written atomically; a re-run skips finished outputs; a bad
file is one line in the report and the run goes on.
"""

from __future__ import annotations

import errno
import json
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import heif
from .colorizer import Colorizer
from .files import OutputUnwritable, atomic_write_bytes, hold_folder, stops_the_run, write_failure
from .hints import HINTS_SUFFIX
from .imageio import COLOUR_OUTPUT, FORMAT_SUFFIX, OUTPUT_FORMATS, STILL_EXTENSIONS, BadInput, animated_refusal, still_format
from .listing import Listing, archive_files
from .render import AB_UPSAMPLING
from .sheet import SHEET_IMAGES, sheet_bytes, sheet_pair
from .stills import (DEFAULT_MAX_MEGAPIXELS, DecodedFile, FileTask, decode_failure, decode_file, header, hints_file, pages_refusal,
                     pixel_refusal, write_file)

REPORT_NAME = "archivecolor-report.json"
PIXELS_IN_FLIGHT = 150_000_000  # decoded but unwritten pixels held at most (~12 bytes each): bounds memory on huge scans
SHEET_NAME = "before-after.jpg"


class FolderStopped(Exception):
    """Ctrl-C (or SIGINT) stopped the run: the files finished are kept, the partial report written."""

    def __init__(self, report: "FolderReport", total: int):
        super().__init__(f"stopped: {report.count('done') + report.count('skipped')} of {total} done; run the same command to resume")
        self.report, self.total = report, total


@dataclass(frozen=True)
class FolderConfig:
    batch_size: int = 8  # images per network call
    output_format: str | None = None  # None: the source's format
    overwrite: bool = False  # redo outputs that already exist
    skip_color: bool = False  # leave already-colour inputs out (default: colorize from their luminance)
    ab_upsampling: str = "bilinear"  # "guided": edge-aware, against colour bleeding
    sheet: bool = False  # write a before/after sheet of the first images
    jobs: int = 2  # decode threads and encode threads (each)
    quality: int = 95  # JPEG / WebP quality
    # pictures above this (all pages, from the header, before any pixel is decoded) are refused: a
    # 24 MP scan and a 20000 × 20000 archive TIFF (400 MP) pass, a 30000 × 30000 decompression bomb does not
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    hints_dir: Path | None = None  # HINTS_DIR/REL.hints.json holds the colour hints of SOURCE/REL (the first page's)
    made_with: str = ""  # what made the colours, for each output's mark (colorize_folder sets it from its colorizer)

    def __post_init__(self):
        if self.output_format is not None and self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {OUTPUT_FORMATS}")
        if self.ab_upsampling not in AB_UPSAMPLING:
            raise ValueError(f"ab upsampling must be one of {AB_UPSAMPLING}")


@dataclass
class FileResult:
    source: str  # relative to the input folder
    status: str  # "done", "skipped" or "failed"
    reason: str = ""
    output: str | None = None  # relative to the output folder
    hints: int = 0  # colour hints that coloured it (folder --hints): a hinted output is never taken for an automatic one


@dataclass
class FolderReport:
    source: str
    output: str
    backend: str
    results: list[FileResult] = field(default_factory=list)
    made_with: dict = field(default_factory=dict)  # what made the colours: version, weights and their SHA-256, settings
    seconds: float = 0.0
    images: int = 0  # pictures colorized (a multi-page TIFF counts each page)
    left_out: int = 0  # hidden or system files not taken for pictures (listing.py)
    others: str | None = None  # the line naming the other files found, not read

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> str:
        summary = {k: self.count(k) for k in ("done", "skipped", "failed")}
        made_with = {**self.made_with, "hints_used": sum(r.hints for r in self.results)} if self.made_with else {}
        return json.dumps(
            {"source": self.source, "output": self.output, "backend": self.backend, "made_with": made_with, "summary": summary,
             "images": self.images, "hidden_or_system_left_out": self.left_out, "other_files_not_read": self.others, "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 3),
             "files": [asdict(r) for r in self.results]},
            indent=1,  # ASCII escapes: file names that are not valid UTF-8 survive
        )


def default_output_folder(source: Path) -> Path:
    """Beside the input, never inside it: scans/ -> scans-colorized/. A single picture goes where
    a run on its folder would put it: scans/a.jpg -> scans-colorized/a.jpg."""
    source = Path(source).resolve()
    if source.is_file():
        source = source.parent
    return source.parent / f"{source.name}-colorized"


def check_output_folder(source: Path, out: Path) -> None:
    source, out = Path(source).resolve(), Path(out).resolve()
    if source.is_file():
        return  # one picture: only its own output could overwrite it, which triage refuses
    if out == source or out.is_relative_to(source):
        raise ValueError(f"the output folder {out} is inside the input folder {source}: choose one beside it (sources are never written)")


def list_sources(source: Path) -> Listing:
    """The stills below `source`, or `source` itself when it is one picture (named by the user: a
    file it cannot read fails, by name); hidden or system files left out, other files counted."""
    return Listing([source]) if source.is_file() else archive_files(source, STILL_EXTENSIONS)


def list_tasks(source: Path, out: Path, output_format: str | None, listing: Listing | None = None) -> tuple[list[FileTask], Listing]:
    """Every still of `listing` (list_sources(source) unless the caller listed it already), with its
    mirrored target under `out`, in a stable order; and the listing."""
    tasks = []
    listing = list_sources(source) if listing is None else listing
    if source.is_file():
        source = source.parent
    for path in listing.files:
        rel = path.relative_to(source)
        if output_format is None:  # the source's own format, unless it cannot hold the colour picture
            fmt, suffix = COLOUR_OUTPUT.get(path.suffix.lower(), (still_format(path), path.suffix))
        else:
            fmt, suffix = output_format, FORMAT_SUFFIX[output_format]
        target = (out / rel).with_suffix(suffix)
        tasks.append(FileTask(path, rel.as_posix(), target, fmt))
    return tasks, listing


def triage(tasks: list[FileTask], out: Path, overwrite: bool) -> tuple[list[FileResult], list[FileTask]]:
    """Results settled before any decoding (finished earlier, or would overwrite a source), and the work left."""
    settled, todo = [], []
    claimed: dict[Path, str] = {}  # output -> the file that has it (--format can give two files one name)
    for task in tasks:
        target = task.target.resolve()
        first = claimed.setdefault(target, task.rel)
        if target == task.source.resolve():
            settled.append(FileResult(task.rel, "failed", "output would overwrite the source"))
        elif first != task.rel:
            settled.append(FileResult(task.rel, "failed", f"its output {_rel(task.target, out)} is also that of {first} "
                                      "(the output format gives both one name): colorize one of them separately, with --out elsewhere"))
        elif task.target.exists() and not overwrite:
            settled.append(FileResult(task.rel, "skipped", "already done", _rel(task.target, out)))
        else:
            todo.append(task)
    return settled, todo


def remove_stale_partials(out: Path) -> int:
    """Delete temporary files an interrupted run left (".NAME.XXXX.part"); they never look finished."""
    removed = 0
    if out.is_dir():
        for path in out.rglob(".*.part"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def colorize_folder(source: Path, out: Path, colorizer: Colorizer, config: FolderConfig, on_file=None, on_total=None,
                    on_pixels=None, listing: Listing | None = None) -> FolderReport:
    """Colorize every still below `source` into `out`; `on_total(n)` once the files are listed,
    `on_pixels({rel: pixels})` once the headers of the files to colour are read (in the
    background: for a progress bar in megapixels, whose ETA small files finishing first do not
    fool), `on_file(FileResult)` after each file. The output folder is locked for the run: a second run
    on it is refused (FolderInUse) before it touches anything there. `listing`: list_sources(source),
    when the caller has listed it already (to say "no pictures" before loading a model)."""
    check_output_folder(source, out)
    config = config if config.made_with else replace(config, made_with=colorizer.provenance())
    lock = hold_output(out)
    try:
        return _colorize_folder(source, out, colorizer, config, on_file, on_total, on_pixels, listing)
    finally:
        lock.close()


def hold_output(out: Path):
    """Lock the output folder for this run; a folder where no file can be created (an immutable one,
    a permission, a read-only mount) stops the run here, on one line, before any picture is read."""
    try:
        return hold_folder(out, "archivecolor run")
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES) or stops_the_run(exc):
            raise OutputUnwritable(f"stopped: no file can be created in {out} ({exc.strerror}): check its permissions, "
                                   "attributes (chattr -i) or free space, then run the same command again") from None
        raise


def _colorize_folder(source: Path, out: Path, colorizer: Colorizer, config: FolderConfig, on_file=None, on_total=None,
                     on_pixels=None, listing: Listing | None = None) -> FolderReport:
    started = time.perf_counter()
    report, record, pending = begin_run(Path(source), Path(out), config, colorizer.backend.name, on_file, on_total, listing)
    if on_pixels is not None:
        count_pixels_in_background(pending, on_pixels)
    report.made_with = {**colorizer.made_with(), "ab_upsampling": config.ab_upsampling,
                        "hints_dir": None if config.hints_dir is None else str(config.hints_dir)}
    out = Path(out)
    todo: deque[FileTask] = deque(pending)
    total_files = len(report.results) + len(todo)

    sheet_pairs: list[tuple[np.ndarray, np.ndarray]] = []
    window = max(2 * config.batch_size, 2 * config.jobs)  # decoded files held at most
    with ThreadPoolExecutor(config.jobs, thread_name_prefix="decode") as decoders, ThreadPoolExecutor(config.jobs, thread_name_prefix="encode") as encoders:
        decoding: deque[tuple[FileTask, Future]] = deque()
        writing: deque[tuple[FileTask, Future]] = deque()
        waiting: list[DecodedFile] = []  # decoded, not yet through the network
        in_flight: dict[str, int] = {}  # file -> its pixels, from decode submission until written or failed

        def drain_writes(limit: int) -> None:
            while len(writing) > limit:
                task, future = writing.popleft()
                in_flight.pop(task.rel, None)
                try:
                    report.images += future.result()
                    record(finished(task, out))
                except BadInput as exc:
                    record(FileResult(task.rel, "failed", str(exc)))
                except Exception as exc:  # an encoder or disk error: this file fails, the run goes on…
                    record(FileResult(task.rel, "failed", f"could not write {_rel(task.target, out)}: {write_failure(exc)}"))
                    if stops_the_run(exc):  # …unless every file after it would fail the same way
                        raise OutputUnwritable(f"stopped: {write_failure(exc)} (writing {_rel(task.target, out)}); "
                                               "finished files are kept: make room and run the same command again") from None

        def run_network(force: bool) -> None:
            """Infer the waiting files once a size bucket fills (or everything, when forced)."""
            nonlocal waiting
            by_bucket = defaultdict(int)
            for item in waiting:
                for job in item.jobs:
                    by_bucket[job.geometry.bucket] += 1
            pending = sum(by_bucket.values())
            if not force and max(by_bucket.values(), default=0) < config.batch_size and pending < 4 * config.batch_size:
                return
            try:
                colorizer.predict([job for item in waiting for job in item.jobs], config.batch_size)
            except Exception as exc:
                for item in waiting:
                    in_flight.pop(item.task.rel, None)
                    record(FileResult(item.task.rel, "failed", f"inference failed: {exc}"))
                waiting = []
                return
            for item in waiting:
                if config.sheet and len(sheet_pairs) < SHEET_IMAGES:
                    sheet_pairs.append(sheet_pair(item.jobs[0], item.task.rel))
                writing.append((item.task, encoders.submit(write_file, item, config.ab_upsampling, config.quality, config.made_with)))
            waiting = []
            drain_writes(2 * config.jobs)

        try:
            while todo or decoding:
                # Submit decodes while the window has room and the pixels held stay within budget;
                # a single file larger than the budget still goes through, alone.
                while todo and len(decoding) < window:
                    if todo[0].pixels is None:
                        todo[0].pixels = header(todo[0].source)[0]
                    if in_flight and sum(in_flight.values()) + todo[0].pixels > PIXELS_IN_FLIGHT:
                        break
                    task = todo.popleft()
                    in_flight[task.rel] = task.pixels
                    decoding.append((task, decoders.submit(decode_file, task, colorizer.prepare, config.max_megapixels, config.skip_color, config.hints_dir)))
                if not decoding:  # the budget is full of files waiting for the network or the writers
                    run_network(force=True)
                    drain_writes(0)
                    in_flight.clear()
                    continue
                task, future = decoding.popleft()
                try:
                    item = future.result()
                except Exception as exc:  # this file fails; the run goes on (Ctrl-C is no Exception: it stops)
                    in_flight.pop(task.rel, None)
                    record(FileResult(task.rel, "failed", decode_failure(exc)))
                    continue
                if item is None:
                    in_flight.pop(task.rel, None)
                    record(FileResult(task.rel, "skipped", "already in colour (--skip-color)"))
                    continue
                waiting.append(item)
                run_network(force=False)
        except KeyboardInterrupt:
            # stop within a second or two: nothing new starts, what runs finishes (atomically), the report says how far it got
            for _, future in (*decoding, *writing):
                future.cancel()
            decoders.shutdown(wait=False, cancel_futures=True)
            encoders.shutdown(wait=False, cancel_futures=True)
            for task, future in writing:  # written before the key: counted as done
                if future.done() and not future.cancelled() and future.exception() is None:
                    report.images += future.result()
                    record(finished(task, out))
            report.seconds = time.perf_counter() - started
            atomic_write_bytes(out / REPORT_NAME, report.to_json().encode())
            raise FolderStopped(report, total_files) from None
        run_network(force=True)
        drain_writes(0)

    return end_run(report, out, config, sheet_pairs, started)


@dataclass
class FolderPlan:
    """What a run would do, read from names and image headers only: nothing is decoded or written."""

    todo: list[FileTask]
    settled: list[FileResult]  # already done, or refused (would overwrite its source)
    unreadable: list[str]  # to do, but their header cannot be read: they will most likely fail
    pixels: int = 0  # of the files to do (all pages)
    left_out: int = 0  # hidden or system files
    others: str | None = None  # the line naming the other files found, not read

    def count(self, status: str) -> int:
        return sum(1 for r in self.settled if r.status == status)


def plan_folder(source: Path, out: Path, config: FolderConfig) -> FolderPlan:
    """`folder --dry-run`: the files a run would colorize, skip and refuse; no folder is created."""
    check_output_folder(source, out)
    tasks, listing = list_tasks(Path(source), Path(out), config.output_format)
    settled, todo = triage(tasks, Path(out), config.overwrite)
    settled = unusable_results(listing, Path(source)) + settled
    plan = FolderPlan([], settled, [], left_out=listing.hidden, others=listing.others_line("images"))
    for task in todo:
        if still_format(task.source) is None:  # a single file named by the user
            plan.settled.append(FileResult(task.rel, "failed", f"unsupported file type {task.source.suffix!r}"))
            continue
        if still_format(task.source) == "heif" and not heif.available():
            plan.settled.append(FileResult(task.rel, "failed", heif.MISSING))
            continue
        task.pixels, pages, kind = header(task.source)
        if refusal := (animated_refusal(kind, pages) or pages_refusal(task.fmt, pages, kind)
                       or pixel_refusal(task.pixels, config.max_megapixels)):
            plan.settled.append(FileResult(task.rel, "failed", refusal))
            continue
        plan.todo.append(task)
        plan.pixels += task.pixels
        if not task.pixels:
            plan.unreadable.append(task.rel)
    return plan


def begin_run(source: Path, out: Path, config: FolderConfig, backend_name: str, on_file=None, on_total=None,
              listing: Listing | None = None):
    """Everything before decoding, on one machine or a cluster: check and prepare the output
    folder, list and triage the files. Returns (report, record(FileResult), the tasks left)."""
    check_output_folder(source, out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    report = FolderReport(str(source), str(out), backend_name)

    def record(result: FileResult) -> None:
        report.results.append(result)
        if on_file is not None:
            on_file(result)

    tasks, listing = list_tasks(source, out, config.output_format, listing)
    report.left_out, report.others = listing.hidden, listing.others_line("images")
    if on_total is not None:
        on_total(len(tasks) + len(listing.unusable))
    settled, todo = triage(tasks, out, config.overwrite)
    orphans = orphan_hints(config.hints_dir, tasks) if config.hints_dir is not None else []
    for result in unusable_results(listing, source) + orphans + settled:
        record(result)
    return report, record, todo


def count_pixels_in_background(tasks: list[FileTask], on_pixels) -> None:
    """Read the tasks' headers in a thread and call on_pixels({rel: pixels}) once (headers only: a
    few milliseconds a file). A task whose header it reads first is not read again for decoding."""
    import threading

    tasks = list(tasks)

    def count():
        for task in tasks:
            if task.pixels is None:
                task.pixels = header(task.source)[0]
        on_pixels({task.rel: task.pixels or 0 for task in tasks})

    threading.Thread(target=count, name="headers", daemon=True).start()


def unusable_results(listing: Listing, source: Path) -> list[FileResult]:
    """One failed result for each listed entry that is no file to read (a link loop, a FIFO…)."""
    return [FileResult(path.relative_to(source).as_posix(), "failed", why) for path, why in listing.unusable.items()]


def end_run(report: FolderReport, out: Path, config: FolderConfig, sheet_pairs: list, started: float) -> FolderReport:
    """The before/after sheet and the JSON report, both written atomically."""
    if config.sheet and sheet_pairs:
        atomic_write_bytes(out / SHEET_NAME, sheet_bytes(sheet_pairs))
    report.seconds = time.perf_counter() - started
    atomic_write_bytes(out / REPORT_NAME, report.to_json().encode())
    return report


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def finished(task: FileTask, out: Path) -> FileResult:
    """A written file's result: done, or failed where its hints could not be used (it was coloured without them)."""
    if task.hint_error:
        return FileResult(task.rel, "failed", f"{task.hint_error}; coloured without its hints", _rel(task.target, out))
    return FileResult(task.rel, "done", output=_rel(task.target, out), hints=task.hints)


def orphan_hints(hints_dir: Path, tasks: list[FileTask]) -> list[FileResult]:
    """A failed result for each hints file that belongs to no picture being coloured (a typo, a moved scan)."""
    wanted = {hints_file(hints_dir, t.rel).resolve() for t in tasks}
    return [FileResult(f"{path}", "failed", "a hints file with no picture beside it (HINTS_DIR mirrors SOURCE: "
                       f"{path.relative_to(hints_dir).as_posix().removesuffix(HINTS_SUFFIX)}.* not found)")
            for path in sorted(Path(hints_dir).rglob("*" + HINTS_SUFFIX)) if path.resolve() not in wanted]
