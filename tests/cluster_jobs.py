"""Cluster jobs the tests run inside a loopback-only network namespace (see test_cluster.py).

    python cluster_jobs.py kill-actor SOURCE OUT WEIGHTS

runs `folder` on a local 2-CPU Ray instance, SIGKILLs the model actor's process once the first
output is written, watches every output's inode until the end (a file written twice gets a new
one), and prints a JSON summary on the last line of stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ACTOR_TITLE = "_ColorizeActor"  # Ray titles an actor's process "ray::MapWorker(MapBatches(_ColorizeActor))..."


def model_actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::") and ACTOR_TITLE in title:
                pids.append(int(entry.name))
    return pids


def kill_actor(source: str, out: str, weights: str) -> dict:
    from archivecolor.cluster import ClusterConfig, ModelSpec
    from archivecolor.cluster.folder import colorize_folder_on_cluster
    from archivecolor.folder import FolderConfig

    out_path = Path(out)
    facts = {"killed": [], "replaced": [], "inodes": {}}
    finished = threading.Event()

    def watch():
        while not finished.is_set():
            for path in out_path.rglob("*.png"):
                try:
                    inode = path.stat().st_ino
                except FileNotFoundError:
                    continue
                seen = facts["inodes"].setdefault(path.name, inode)
                if seen != inode and path.name not in facts["replaced"]:
                    facts["replaced"].append(path.name)
            if not facts["killed"] and any(out_path.rglob("*.png")):
                facts["killed_at"] = len(list(out_path.rglob("*.png")))  # outputs finished when the actor died
                for pid in model_actor_pids():
                    os.kill(pid, signal.SIGKILL)
                    facts["killed"].append(pid)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    report = colorize_folder_on_cluster(Path(source), out_path, ModelSpec(str(weights), "onnx", "cpu", "fp32", render_size=64),
                                        FolderConfig(batch_size=2), ClusterConfig(address="local", local_cpus=2))
    finished.set()
    watcher.join()
    facts["report"] = json.loads(report.to_json())
    return facts


if __name__ == "__main__":
    job, *args = sys.argv[1:]
    if job == "kill-actor":
        print(json.dumps(kill_actor(*args)))
    else:
        raise SystemExit(f"unknown job {job!r}")
