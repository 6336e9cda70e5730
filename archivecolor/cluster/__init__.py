"""Archive scale: the folder and video pipelines on a Ray cluster (`pip install "archivecolor[cluster]"`).

Ray Data does the scheduling, the streaming and the backpressure; these modules only say what
runs where:

    list files (driver) -> decode (CPU tasks) -> colorize (actors holding the model once each)
                        -> recombine + write (CPU tasks) -> one report (driver)

Every worker must see the input and output folders under the same paths (a shared filesystem,
as archives have). The weights travel through Ray's object store, so a `--weights` file need
only exist where the command is typed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

from ..modelspec import ModelSpec  # noqa: F401  (what the model actors open, as one machine does)

INSTALL_HINT = 'pip install "archivecolor[cluster]"'
CPUS_PER_ACTOR_MAX = 4  # CPU actors beyond this many threads gain little on this network


class ClusterError(Exception):
    """A cluster that cannot be reached or used; the message says what to do."""


@dataclass(frozen=True)
class ClusterConfig:
    address: str = "auto"  # "auto": RAY_ADDRESS or the cluster `ray start` made here, else a new local one;
    #                        "local": always a new private one on this machine; or HOST:PORT / ray://HOST:10001
    actors: int | None = None  # model actors; None: one per GPU, else as many as half the CPUs hold (all, for video)
    cpus_per_actor: float | None = None  # None: 1 with a GPU, else min(4, CPUs // 4) (at least 1)
    gpus_per_actor: float | None = None  # None: 1 where the cluster has GPUs, else 0
    local_cpus: int | None = None  # CPUs of a local instance (None: every core)


@dataclass(frozen=True)
class ActorPlan:
    actors: int
    cpus: float  # per actor
    gpus: float  # per actor

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))


def plan_actors(config: ClusterConfig, resources: dict, model_share: float = 0.5) -> ActorPlan:
    """How many model actors, and what each holds, from the cluster's total resources.

    With GPUs: one actor per GPU. CPU only: `model_share` of the CPUs goes to model actors of up
    to 4 threads. For `folder` that is half: the other half decodes, recombines and writes (which
    costs about as much on a CPU); a `video` actor runs a film's whole stream, so it takes all.
    """
    cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    gpus_per = config.gpus_per_actor if config.gpus_per_actor is not None else (1.0 if gpus >= 1 else 0.0)
    if gpus_per > 0:
        if gpus_per > gpus:
            raise ClusterError(f"each actor asks for {gpus_per:g} GPU but the cluster has {gpus:g}")
        cpus_per = config.cpus_per_actor or 1.0
        actors = config.actors or max(1, int(gpus // gpus_per))
    else:
        cpus_per = config.cpus_per_actor or float(max(1, min(CPUS_PER_ACTOR_MAX, int(cpus // 4))))
        actors = config.actors or max(1, int(cpus * model_share // cpus_per))
    if cpus_per > cpus:
        raise ClusterError(f"each actor asks for {cpus_per:g} CPUs but the cluster has {cpus:g}")
    if model_share < 1 and actors * cpus_per > cpus - 1:
        raise ClusterError(f"{actors} model actor(s) × {cpus_per:g} CPUs would leave fewer than 1 of the cluster's {cpus:g} CPUs "
                           "to decode and write: lower --cluster-actors or --actor-cpus")
    return ActorPlan(actors, cpus_per, gpus_per)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a part of the extra, not of every Ray install)
    except ImportError:
        raise ClusterError(f"--cluster needs Ray with Ray Data: {INSTALL_HINT}") from None
    return ray


@contextmanager
def connected(config: ClusterConfig):
    """Connect to (or start) the cluster; disconnect afterwards, stopping only what we started."""
    import logging

    ray = import_ray()
    if ray.is_initialized():  # a caller (a notebook, a test) already connected
        yield ray
        return
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if config.address == "local":
            ray.init(address="local", num_cpus=config.local_cpus, **options)
        elif config.address == "auto":
            ray.init(num_cpus=config.local_cpus if not os.environ.get("RAY_ADDRESS") else None, **options)
        else:
            ray.init(address=config.address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"could not reach the Ray cluster at {config.address!r}: {exc}") from None
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # archivecolor draws its own bar, with rate and ETA
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset lines and hints are noise beside our progress bar
    try:
        yield ray
    finally:
        ray.shutdown()


def weights_payload(path) -> tuple[str, bytes]:
    """(sha256, bytes) of a weights file, so that actors on other machines can load it."""
    import hashlib
    from pathlib import Path

    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), data


def materialize_weights(digest: str, data: bytes):
    """The weights as a local file on this worker (cached by hash, written atomically)."""
    import tempfile
    from pathlib import Path

    from ..files import atomic_write_bytes

    path = Path(tempfile.gettempdir()) / "archivecolor-weights" / f"{digest}.safetensors"
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


def open_actor_colorizer(weights: tuple[str, bytes], spec: ModelSpec, threads: int):
    """The colorizer a model actor holds for its whole life (the model loaded once per actor), from
    the spec one machine opens, its weights a local copy of those that travelled through Ray."""
    return spec.open(threads=threads, weights_file=materialize_weights(*weights))[0]
