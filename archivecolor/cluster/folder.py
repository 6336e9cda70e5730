"""`archivecolor folder --cluster`: the folder pipeline as a Ray Data job.

    list + triage (driver) -> decode (CPU tasks) -> colorize (model actors) -> recombine + write (CPU tasks)

Only render-size data crosses the network: the decoding stage ships each page's network input
and render-size L (about 1 MB at render size 256), the actors ship back the predicted colour,
and the writing stage reads the source again for its full-resolution pixels and metadata. A
20 000 × 20 000 scan so never travels through the object store, at the cost of decoding each
file twice. The outputs are the single-machine `folder` outputs byte for byte wherever the
backend's results do not depend on how images are batched (onnxruntime on a CPU: tested).
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from functools import partial
from pathlib import Path

from ..colorizer import RenderJob, prepare_job
from ..folder import FileResult, FolderConfig, FolderReport, begin_run, check_output_folder, end_run, hold_output, remove_stale_partials
from ..stills import DecodedFile, FileTask, decode_failure, decode_file, write_file
from ..sheet import SHEET_IMAGES, sheet_pair
from . import ClusterConfig, ModelSpec, connected, open_actor_colorizer, plan_actors, weights_payload

# Memory a decoding or writing task reserves: it holds one full-resolution picture (a 24 MP
# 16-bit scan with its luminance is about 0.4 GB). The reservation keeps a node from taking more
# of them than it can hold, and keeps Ray from fusing decoding into the model actors.
CPU_STAGE_MEMORY = 1 << 30


def colorize_folder_on_cluster(source: Path, out: Path, model: ModelSpec, config: FolderConfig,
                               cluster: ClusterConfig = ClusterConfig(), on_file=None, on_total=None, on_start=None) -> FolderReport:
    """The `folder` job on a Ray cluster; the same outputs, skip-done, atomic writes and report.

    `on_start(ActorPlan, resources)` once connected; `on_file(FileResult)` as each file finishes.
    """
    check_output_folder(source, out)
    if not config.made_with:  # each output's provenance mark, as one machine writes it
        config = dataclasses.replace(config, made_with=model.made_with())
    lock = hold_output(out)  # as on one machine: a second run on OUT is refused, an unwritable one stops here
    try:
        return _on_cluster(source, out, model, config, cluster, on_file, on_total, on_start)
    finally:
        lock.close()


def _on_cluster(source, out, model, config, cluster, on_file, on_total, on_start) -> FolderReport:
    from ..weights import read_config

    source, out = Path(source).resolve(), Path(out).resolve()
    started = time.perf_counter()
    report, record, todo = begin_run(source, out, config, "", on_file, on_total)
    weights = model.weights_file()
    multiple = read_config(weights).size_multiple
    digest, data = weights_payload(weights)
    sheet: list = []
    if todo:
        with connected(cluster) as ray:
            resources = ray.cluster_resources()
            actors = plan_actors(cluster, resources)
            if on_start is not None:
                on_start(actors, resources)
            rows = [{"source": str(t.source), "rel": t.rel, "target": str(t.target), "fmt": t.fmt} for t in todo]
            blocks = max(1, -(-len(rows) // config.batch_size))  # one model batch per block: streams from the first files
            dataset = (
                ray.data.from_items(rows, override_num_blocks=blocks)
                .map(partial(_decode_row, render_size=model.render_size, multiple=multiple, config=config),
                     num_cpus=1, memory=CPU_STAGE_MEMORY)
                .map_batches(_ColorizeActor, batch_size=config.batch_size, batch_format="pandas",
                             compute=ray.data.ActorPoolStrategy(size=actors.actors),
                             num_cpus=actors.cpus, num_gpus=actors.gpus or None,
                             fn_constructor_kwargs={"weights": (digest, data), "model": model,
                                                    "batch_size": config.batch_size, "threads": actors.threads})
                .map(partial(_write_row, config=config, run_started_ns=time.time_ns()), num_cpus=1, memory=CPU_STAGE_MEMORY)
            )
            for row in dataset.iter_rows():
                report.backend = report.backend or row["backend"]
                if row["images"]:
                    report.images += int(row["images"])
                if row["sheet"] and len(sheet) < SHEET_IMAGES:
                    sheet.append(pickle.loads(row["sheet"]))
                record(FileResult(row["rel"], row["status"], row["reason"], row["output"] or None, hints=int(row["hints"])))
    remove_stale_partials(out)  # temporaries of a writer that died and was retried
    report.results.sort(key=lambda r: r.source)
    return end_run(report, out, config, sheet, started)


def _outcome(row: dict, status: str, reason: str = "", output: str = "", images: int = 0, sheet: bytes = b"") -> dict:
    """Every stage emits the same columns, so that a failed row flows through the later stages untouched.
    `hints`: the colour hints placed on the file; `hint_error`: why its hints file could not be used."""
    return {"source": row["source"], "rel": row["rel"], "target": row["target"], "fmt": row["fmt"], "status": status,
            "reason": reason, "output": output, "images": images, "sheet": sheet, "payload": row.get("payload", b""),
            "backend": row.get("backend", ""), "hints": row.get("hints", 0), "hint_error": row.get("hint_error", "")}


def _decode_row(row: dict, render_size: int, multiple: int, config: FolderConfig) -> dict:
    """Decode one file and keep only what the model needs: per page (geometry, L at render size, network input)."""
    task = FileTask(Path(row["source"]), row["rel"], Path(row["target"]), row["fmt"])
    try:
        item = decode_file(task, partial(prepare_job, render_size=render_size, size_multiple=multiple), config.max_megapixels,
                           config.skip_color, config.hints_dir)
    except Exception as exc:  # this file fails, the run goes on
        return _outcome(row, "failed", decode_failure(exc))
    if item is None:
        return _outcome(row, "skipped", "already in colour (--skip-color)")
    pages = [(job.geometry, job.L_render, job.l_net, job.hint_boxes) for job in item.jobs]
    return {**_outcome(row, "pending"), "payload": pickle.dumps(pages, protocol=5), "hints": task.hints,
            "hint_error": task.hint_error or ""}


class _ColorizeActor:
    """Holds one backend for its whole life; colors every page of a batch of files in network batches."""

    def __init__(self, weights, model: ModelSpec, batch_size: int, threads: int):
        self.colorizer = open_actor_colorizer(weights, model, threads)
        self.batch_size = batch_size

    def __call__(self, batch):
        import pandas as pd

        rows = batch.to_dict("records")
        pending = {id(row): [RenderJob(g, L, l_net, hint_boxes=boxes) for g, L, l_net, boxes in pickle.loads(row["payload"])]
                   for row in rows if row["status"] == "pending"}
        failure = None
        try:
            self.colorizer.predict([job for jobs in pending.values() for job in jobs], self.batch_size)
        except Exception as exc:  # these files fail, the run goes on
            failure = f"inference failed: {exc}"
        done = []
        for row in rows:
            if id(row) not in pending:  # failed or skipped upstream: passed on untouched
                done.append(_outcome(row, row["status"], row["reason"]))
            elif failure:
                done.append(_outcome(row, "failed", failure))
            else:
                colour = [(job.geometry, job.L_render, job.ab) for job in pending[id(row)]]
                done.append({**_outcome(row, "pending"), "payload": pickle.dumps(colour, protocol=5)})
            done[-1]["backend"] = self.colorizer.backend.name
        return pd.DataFrame(done)


def _write_row(row: dict, config: FolderConfig, run_started_ns: int) -> dict:
    """Read the source again at full resolution, recombine with the predicted colour, write atomically."""
    if row["status"] != "pending":
        return _outcome(row, row["status"], row["reason"])
    target = Path(row["target"])
    output = _relative_output(row)
    # A retried task (its first worker died after the rename) finds its file already written: never twice.
    if target.exists() and (not config.overwrite or target.stat().st_mtime_ns >= run_started_ns):
        return _written(row, output, len(pickle.loads(row["payload"])))
    from ..imageio import read_stills
    from ..render import full_luminance

    task = FileTask(Path(row["source"]), row["rel"], target, row["fmt"], hints=int(row["hints"]), hint_error=row["hint_error"] or None)
    pages = pickle.loads(row["payload"])
    jobs = [RenderJob(geometry, L_render, None, ab) for geometry, L_render, ab in pages]
    try:
        stills = read_stills(task.source)
        if len(stills) != len(jobs):
            raise ValueError("the file changed during the run")
        images = write_file(DecodedFile(task, stills, [full_luminance(s.pixels, s.metadata.icc) for s in stills], jobs),
                            config.ab_upsampling, config.quality, config.made_with)
    except Exception as exc:
        return _outcome(row, "failed", f"could not write {output}: {exc}")
    sheet = pickle.dumps(sheet_pair(jobs[0], task.rel), protocol=5) if config.sheet else b""
    return _written(row, output, images, sheet)


def _written(row: dict, output: str, images: int, sheet: bytes = b"") -> dict:
    """A written file's row: done, or failed where its hints could not be used, as on one machine (folder.finished)."""
    if row["hint_error"]:
        return _outcome(row, "failed", f"{row['hint_error']}; coloured without its hints", output=output, images=images, sheet=sheet)
    return _outcome(row, "done", output=output, images=images, sheet=sheet)


def _relative_output(row: dict) -> str:
    """The output's path relative to the output folder (the rows know the source's relative path)."""
    target, rel = Path(row["target"]), Path(row["rel"])
    root = target.parents[len(rel.parts) - 1]
    return target.relative_to(root).as_posix()
