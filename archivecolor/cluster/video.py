"""`archivecolor video --cluster`: many films, and the chunks of long ones, spread over a Ray cluster.

The driver plans every film as the single-machine command does (stream facts, keyframe-aligned
chunks that each start their colour history afresh) and leaves out what an earlier run
finished. Ray Data hands each unfinished chunk (or short film) to a pool of actors that hold
the model; an actor runs the whole decode -> infer -> smooth -> encode stream for it and
writes it atomically. The driver joins each film's chunks without re-encoding, with the
source's audio and subtitles, as soon as its last chunk is in.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..video.ffmpeg import VideoError, find_ffmpeg
from ..video.chunks import check_chunk_seeks, check_complete, join_chunks, make_index_copy, plan_film, prepare_chunk_folder
from ..video.config import VideoConfig
from ..video.film import run_chunk
from ..video.stream import Segment
from ..files import remove_temporaries_of, temporary_beside
from . import ClusterConfig, ModelSpec, connected, open_actor_colorizer, plan_actors, weights_payload


@dataclass
class FilmOutcome:
    source: str
    target: str
    status: str = "pending"  # "done", "skipped" or "failed"
    reason: str = ""
    frames: int = 0  # frames colorized in this run
    chunks: int = 1
    resumed_chunks: int = 0  # chunks an earlier run had finished
    scene_cuts: int = 0
    seconds: float = 0.0  # from the start of the run until this film was finished
    temporal: dict = field(default_factory=dict)  # frame-weighted means of the chunks' figures
    _pending: int = 0
    _measured: list = field(default_factory=list)  # (frames, temporal) per chunk


def colorize_films_on_cluster(films: list[tuple[Path, Path]], weights: Path, model: ModelSpec, render_size: int,
                              config: VideoConfig, cluster: ClusterConfig = ClusterConfig(), overwrite: bool = False,
                              on_total=None, on_frames=None, on_film=None, on_start=None) -> list[FilmOutcome]:
    """Colorize (source, target) films on a Ray cluster. `on_total(frames)` once planned, `on_frames(n)`
    as chunks finish, `on_film(FilmOutcome)` as each film ends."""
    started = time.perf_counter()
    outcomes, rows, plans = [], [], {}
    for index, (source, target) in enumerate(films):
        source, target = Path(source).resolve(), Path(target).resolve()
        outcome = FilmOutcome(str(source), str(target))
        outcomes.append(outcome)
        if target.exists() and not overwrite:
            outcome.status, outcome.reason = "skipped", "exists"
            continue
        try:
            plan = plan_film(source, target, config)
        except VideoError as exc:
            outcome.status, outcome.reason = "failed", str(exc)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        decode_from = source
        if plan.index_copy:  # an unindexed stream (.mpg, .vob, .ts): its chunks are decoded from a copy made here first
            try:
                decode_from, plan = make_index_copy(find_ffmpeg(config.ffmpeg), source, target, plan, config.chunk_frames)
            except VideoError as exc:
                outcome.status, outcome.reason = "failed", str(exc)
                continue
        decode_from, plan = check_chunk_seeks(find_ffmpeg(config.ffmpeg), source, decode_from, target, plan, config)
        base = {"film": index, "source": str(decode_from), "plan": pickle.dumps(plan, protocol=5)}
        rows_before = len(rows)
        outcome.chunks = len(plan.chunks)
        if len(plan.chunks) == 1:
            rows.append({**base, "out": str(target), "first": 0, "count": plan.chunks[0][1], "whole": True})
        else:
            work, names = prepare_chunk_folder(source, plan.chunks, target, config)
            plans[index] = (plan, work, names)
            for chunk, (first, count) in zip(names, plan.chunks):
                if chunk.exists():
                    outcome.resumed_chunks += 1
                else:
                    rows.append({**base, "out": str(chunk), "first": first, "count": count, "whole": False})
        outcome._pending = len(rows) - rows_before

    def finish(index: int) -> None:
        outcome = outcomes[index]
        if outcome.status == "pending" and index in plans:
            plan, work, names = plans[index]
            try:
                join_chunks(find_ffmpeg(config.ffmpeg), work, names, Path(outcome.source), plan.info, Path(outcome.target), plan.container)
            except VideoError as exc:
                outcome.status, outcome.reason = "failed", str(exc)
        if outcome.status == "pending":
            outcome.status = "done"
        total = sum(frames for frames, _ in outcome._measured)
        if total and config.measure:
            outcome.temporal = {kind: {figure: sum(frames * t[kind][figure] for frames, t in outcome._measured) / total
                                       for figure in outcome._measured[0][1][kind]} for kind in outcome._measured[0][1]}
        outcome.seconds = time.perf_counter() - started
        if on_film is not None:
            on_film(outcome)

    if on_total is not None:
        on_total(sum(row["count"] for row in rows))
    for index, outcome in enumerate(outcomes):  # nothing left to colorize: join (or report) now
        if outcome.status == "pending" and outcome._pending == 0:
            finish(index)
    if rows:
        digest, data = weights_payload(weights)
        with connected(cluster) as ray:
            resources = ray.cluster_resources()
            actors = plan_actors(cluster, resources, model_share=1.0)
            if on_start is not None:
                on_start(actors, resources)
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                _FilmActor, batch_size=1, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=actors.actors),
                num_cpus=actors.cpus, num_gpus=actors.gpus or None,
                fn_constructor_kwargs={"weights": (digest, data), "model": model, "render_size": render_size, "config": config,
                                       "threads": actors.threads})
            for row in dataset.iter_rows():
                outcome = outcomes[int(row["film"])]
                if row["status"] == "failed":
                    outcome.status = "failed"
                    outcome.reason = outcome.reason or row["reason"]
                else:
                    outcome.frames += int(row["frames"])
                    outcome.scene_cuts += int(row["cuts"])
                    if row["temporal"]:
                        outcome._measured.append((int(row["frames"]), json.loads(row["temporal"])))
                if on_frames is not None:
                    on_frames(int(row["count"]))
                outcome._pending -= 1
                if outcome._pending == 0:
                    finish(int(row["film"]))
    for outcome in outcomes:  # temporaries of an actor that died and was retried
        remove_temporaries_of(Path(outcome.target))
    return outcomes


class _FilmActor:
    """Holds one colorizer; runs one chunk (or one short film) per call, from decoding to the written file."""

    def __init__(self, weights, model: ModelSpec, render_size: int, config: VideoConfig, threads: int):
        self.colorizer = open_actor_colorizer(weights, model, render_size, threads)
        self.config = config

    def __call__(self, batch):
        import pandas as pd

        return pd.DataFrame([self._run(row) for row in batch.to_dict("records")])

    def _run(self, row: dict) -> dict:
        from ..video.smooth import TemporalSmoother
        from ..video.temporal import TemporalMeter

        outcome = {"film": row["film"], "count": row["count"], "status": "done", "reason": "", "frames": 0, "cuts": 0, "temporal": ""}
        out = Path(row["out"])
        if out.exists():  # a retried call whose first attempt finished the file: never written twice
            return outcome
        plan = pickle.loads(row["plan"])
        smoother = TemporalSmoother(self.config.smoothing)
        meters = {"smoothed": TemporalMeter(), "per_frame": TemporalMeter()} if self.config.measure else {}
        try:
            segment = Segment(Path(row["source"]), plan.info, find_ffmpeg(self.config.ffmpeg), self.colorizer, self.config,
                               smoother, meters, None, plan.timestamps)
            if row["whole"]:
                with temporary_beside(out) as tmp:
                    frames = segment.run(tmp, plan.container, with_streams=True)
                    check_complete(frames, plan.info)  # as on one machine: a film that decodes short fails
                    os.replace(tmp, out)
            else:
                run_chunk(segment, out, row["first"], row["count"])
                frames = row["count"]
        except VideoError as exc:
            return {**outcome, "status": "failed", "reason": str(exc)}
        except Exception as exc:  # one film fails, the others go on
            return {**outcome, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        temporal = json.dumps({name: meter.result() for name, meter in meters.items()}) if meters else ""
        return {**outcome, "frames": frames, "cuts": smoother.cuts, "temporal": temporal}
