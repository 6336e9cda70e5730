"""`video --report`: one JSON record per film or reel, for unattended batches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..files import atomic_write_bytes

STATUSES = ("done", "skipped", "failed", "stopped")


def record(source: Path, output: Path, status: str, reason: str = "", result=None, kind: str = "film") -> dict:
    """One film's or reel's entry: what happened, and its figures (a VideoResult or SequenceResult) when it ran."""
    entry = {"kind": kind, "source": str(source), "output": str(output), "status": status, "reason": reason}
    if result is not None:
        figures = dataclasses.asdict(result)
        if "failed" in figures:  # an image sequence's frames that failed
            figures["failed_frames"] = [{"frame": frame, "reason": why} for frame, why in figures.pop("failed")]
        entry.update({k: v for k, v in figures.items() if k not in ("source", "output")},
                     frames_per_s=round(result.frames_per_s, 3), seconds=round(result.seconds, 3))
    return entry


def write(path: Path, records: list[dict], made_with: dict | None = None) -> None:
    """The report: a summary, what made the colours (version, weights and their SHA-256, settings), each film."""
    summary = {status: sum(r["status"] == status for r in records) for status in STATUSES}
    atomic_write_bytes(path, json.dumps({"summary": summary, "made_with": made_with or {}, "films": records}, indent=1).encode())
