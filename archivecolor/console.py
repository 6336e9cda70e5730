"""Terminal output: rich progress bars with rate and ETA, one-line errors on stderr."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True, highlight=False)


def amount(value: float, scale: float) -> str:
    """A count as a bar shows it: whole where it is whole (files, frames), else with the decimals
    its size needs (0.42 of 0.42 megapixels, not 0/0)."""
    if float(value).is_integer() and float(scale).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}" if scale < 10 else f"{value:.1f}" if scale < 100 else f"{value:.0f}"


class DoneOfTotalColumn(ProgressColumn):
    """'done/total' (rich's MofNCompleteColumn, which shows 0.4 megapixels as 0)."""

    def render(self, task) -> Text:
        scale = task.total if task.total is not None else task.completed
        total = "?" if task.total is None else amount(task.total, scale)
        return Text(f"{amount(task.completed, scale)}/{total}", style="progress.download")


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
        DoneOfTotalColumn(),
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
