"""How a training run stops: SIGINT and SIGTERM at a step boundary, saved there; the data-loading
workers leave those signals to the main process and are never left holding the exit."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading


class Stopped(KeyboardInterrupt):
    """A stop signal, raised at the next step boundary as a KeyboardInterrupt: the state saved
    there is whole (no optimiser has stepped on a batch that the saved position says is to come)."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


class StopRequest(threading.Event):
    """Set by a stop signal's handler; says which signal."""

    signum = signal.SIGTERM


@contextlib.contextmanager
def signals_stop_at_a_step(enabled: bool = True):
    """Ctrl-C (SIGINT) and SIGTERM (kill, systemd, docker stop, a batch scheduler's time limit)
    stop the run at the next step boundary, saved there.

    The handlers only raise a flag, so a signal never lands inside a step (a D update made, the
    G update not: a resume would redo half a step), validation or a checkpoint write. A second
    Ctrl-C stops at once, without saving (the last checkpoint stands). SIGINT that the shell set
    to be ignored (a run started in the background) stays ignored: stop such a run with kill.
    Not under DDP, where ranks stopping at different steps would wait on each other for ever.
    """
    requested = StopRequest()
    requested.handles_sigint = False
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def stop(signum, frame):
        if requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: now
        requested.signum = signum
        requested.set()

    previous_term = signal.signal(signal.SIGTERM, stop)
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    previous_int = None if ignored else signal.signal(signal.SIGINT, stop)
    requested.handles_sigint = previous_int is not None
    try:
        yield requested
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def ignore_sigterm(worker_id: int) -> None:
    """Data-loading workers leave SIGTERM and Ctrl-C's SIGINT to the main process, which saves
    and shuts them down.

    A scheduler signals every process of the job at once, and a terminal's Ctrl-C the whole
    process group; a worker dying of it first would read as a crash.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers(batches) -> None:
    """Shut an epoch's data-loading workers down now rather than when its iterator is collected:
    after a worker died, the exception's traceback can keep the iterator alive, and its workers
    with it, holding their memory while the state is saved."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # DataLoader's own, idempotent
    if shutdown is not None:
        shutdown()


@functools.cache
def kill_workers_left_at_exit() -> None:
    """Registered once, before the first data-loading worker starts. At exit multiprocessing ends
    the workers still alive with SIGTERM and waits for them; ours ignore SIGTERM, so a worker that
    was never shut down would hold the exit forever (seen once after a worker was killed). Kill
    them first: atexit runs this before multiprocessing's own handler."""
    import atexit
    import multiprocessing

    def kill_left_workers():
        for child in multiprocessing.active_children():
            child.kill()

    atexit.register(kill_left_workers)
