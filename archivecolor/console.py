"""Terminal output: rich progress bars with rate and ETA, one-line errors on stderr."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True, highlight=False)


class RateColumn(ProgressColumn):
    """Items per second, with the unit named (images/s, frames/s)."""

    def __init__(self, unit: str = "images/s"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"– {self.unit}", style="progress.data.speed")
        return Text(f"{speed:.1f} {self.unit}", style="progress.data.speed")


def make_progress(unit: str = "images/s", extra: str | None = None, disable: bool = False) -> Progress:
    """A progress bar: description, bar, done/total, %, rate, elapsed, ETA (and a free text field)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    return Progress(*columns, console=stderr, disable=disable, transient=False, refresh_per_second=4)


def error_line(path, reason: str) -> None:
    """One line naming the file, whatever characters its name holds."""
    name = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    stderr.print(Text.assemble(("error", "red"), f": {name!r}: {reason}"), soft_wrap=True)


def warn(message: str) -> None:
    stderr.print(Text.assemble(("warning", "yellow"), f": {message}"), soft_wrap=True)


def info(message: str) -> None:
    stderr.print(Text(message), soft_wrap=True)


def is_interactive() -> bool:
    return sys.stderr.isatty()
