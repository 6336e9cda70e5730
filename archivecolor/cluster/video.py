"""`archivecolor video --cluster`: many films, and the chunks of long ones, spread over a Ray cluster.

The driver prepares every film as one machine does (video.film.prepare_film: the plan, the
index copy, the seek check, the chunks an earlier run finished). Ray Data hands each piece
still to colour (a chunk, or a short film whole) to a pool of actors that hold the model; an
actor runs video.film.run_piece on it, as one machine does, and sends back what it found. The
driver finishes each film (video.film.finish_film: the join, the sheet, the merged figures)
as soon as its last piece is in.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from pathlib import Path

from ..files import remove_temporaries_of
from ..video.config import VideoConfig
from ..video.film import (FilmOutcome, failure_reason, finish_film, finished_outcome, holding_films, prepare_film, run_piece,
                          settled_before_start, with_hints)
from ..video.film_hints import hinted_look
from . import ClusterConfig, ModelSpec, connected, open_actor_colorizer, plan_actors, weights_payload


def colorize_films_on_cluster(films: list[tuple[Path, Path]], model: ModelSpec, config: VideoConfig,
                              cluster: ClusterConfig = ClusterConfig(), overwrite: bool = False,
                              on_total=None, on_frames=None, on_film=None, on_start=None, hints: dict | None = None) -> list[FilmOutcome]:
    """Colorize (source, target) films on a Ray cluster. `on_total(frames)` once planned, `on_frames(n)`
    as pieces finish, `on_film(FilmOutcome)` as each film ends. `hints` maps a film to its hints
    file: tracked through the film here, on the driver, as one machine does; the job carries them
    to the actors."""
    from ..weights import read_config

    started = time.perf_counter()
    if not config.look:  # chunks are joined only with chunks of the same look
        config = dataclasses.replace(config, look=model.look())
    if not config.made_with:  # each film's provenance mark
        config = dataclasses.replace(config, made_with=model.made_with())
    hints = {Path(film).resolve(): path for film, path in (hints or {}).items()}
    films = [(Path(source).resolve(), Path(target).resolve()) for source, target in films]
    outcomes = [settled_before_start(source, target, overwrite) or FilmOutcome(source, target, "pending") for source, target in films]
    with holding_films(outcome.target for outcome in outcomes if outcome.status == "pending"):
        jobs, rows, results = {}, [], {}
        for index, (outcome, (source, target)) in enumerate(zip(outcomes, films)):
            if outcome.status != "pending":
                continue
            try:
                if source in hints:  # as colorize_video: chunks of other hints are not joined to these
                    job = prepare_film(source, target, dataclasses.replace(config, look=hinted_look(config.look, hints[source], model.hint_reach)))
                    job = with_hints(job, hints[source], model.render_size, read_config(model.weights_file()).size_multiple)
                else:
                    job = prepare_film(source, target, config)
            except Exception as exc:  # one film fails, the others go on
                outcome.status, outcome.reason = "failed", failure_reason(exc)
                continue
            jobs[index], results[index] = job, []
            payload = pickle.dumps(job, protocol=5)
            rows += [{"film": index, "job": payload, "piece": number, "count": piece.count}
                     for number, (piece, done) in enumerate(zip(job.pieces, job.finished)) if not done]

        pending = {index: sum(row["film"] == index for row in rows) for index in jobs}

        def finish(index: int) -> None:
            outcome = outcomes[index]
            if outcome.status == "pending":
                try:
                    finished = finished_outcome(outcome.source, outcome.target,
                                                finish_film(jobs[index], results[index], time.perf_counter() - started))
                    outcome.result, outcome.status, outcome.reason = finished.result, finished.status, finished.reason
                except Exception as exc:
                    outcome.status, outcome.reason = "failed", failure_reason(exc)
            if on_film is not None:
                on_film(outcome)

        if on_total is not None:
            on_total(sum(row["count"] for row in rows))
        for index, outcome in enumerate(outcomes):
            if index not in jobs:  # skipped, or failed before a frame
                if on_film is not None:
                    on_film(outcome)
            elif pending[index] == 0:  # nothing left to colour: join now
                finish(index)
        if rows:
            digest, data = weights_payload(model.weights_file())
            with connected(cluster) as ray:
                resources = ray.cluster_resources()
                actors = plan_actors(cluster, resources, model_share=1.0)
                if on_start is not None:
                    on_start(actors, resources)
                dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                    _FilmActor, batch_size=1, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=actors.actors),
                    num_cpus=actors.cpus, num_gpus=actors.gpus or None,
                    fn_constructor_kwargs={"weights": (digest, data), "model": model, "threads": actors.threads})
                for row in dataset.iter_rows():
                    index = int(row["film"])
                    outcome = outcomes[index]
                    if row["reason"]:
                        outcome.status = "failed"
                        outcome.reason = outcome.reason or row["reason"]
                    elif (result := pickle.loads(row["result"])) is not None:  # None: a retried piece found finished
                        results[index].append(result)
                    if on_frames is not None:
                        on_frames(int(row["count"]))
                    pending[index] -= 1
                    if pending[index] == 0:
                        finish(index)
        for outcome in outcomes:  # temporaries of an actor that died and was retried
            remove_temporaries_of(outcome.target)
    return outcomes


class _FilmActor:
    """Holds one colorizer; runs one piece of a film per call (video.film.run_piece), from decoding to the written file."""

    def __init__(self, weights, model: ModelSpec, threads: int):
        self.colorizer = open_actor_colorizer(weights, model, threads)

    def __call__(self, batch):
        import pandas as pd

        return pd.DataFrame([self._run(row) for row in batch.to_dict("records")])

    def _run(self, row: dict) -> dict:
        job = pickle.loads(row["job"])
        piece = job.pieces[row["piece"]]
        reply = {"film": row["film"], "count": row["count"], "reason": "", "result": b""}
        if piece.out.exists():  # a retried call whose first attempt finished the file: never written twice
                return {**reply, "result": pickle.dumps(None)}
        try:
            return {**reply, "result": pickle.dumps(run_piece(job, piece, self.colorizer), protocol=5)}
        except Exception as exc:  # one film fails, the others go on
            return {**reply, "reason": failure_reason(exc)}
