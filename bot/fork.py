"""Two cores for a cache rebuild: a task in a forked child beside one in this process, or
left to finish in the background.

A rebuild (the lemma table, the ranker's cross-validation) is CPU work in Python and in
scikit-learn; a forked child shares this process's memory as it was at the fork, so it
needs nothing re-imported or re-analysed, and its result comes back pickled through a pipe.
Where fork is missing (or MATCHER_WORKERS=1), both tasks run here, one after the other: the
result is the same either way.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")
log = logging.getLogger(__name__)


def can_fork() -> bool:
    """A forked child needs fork (POSIX) and a second core; MATCHER_WORKERS=1 turns it off."""
    if os.environ.get("MATCHER_WORKERS") == "1" or not hasattr(os, "fork"):
        return False
    return (os.cpu_count() or 1) > 1


def _fork(thaw: bool) -> int:
    """os.fork() with this process's objects moved out of the garbage collector's sight
    first, so that collections (the child's, and with `thaw` False this process's until
    `gc.unfreeze()`) do not touch, and so copy, every page the two processes share."""
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        raise
    if pid != 0 and thaw:
        gc.unfreeze()
    return pid


@contextmanager
def one_thread_each() -> Iterator[None]:
    """BLAS on one thread per process while a rebuild trains: its parallelism is its processes
    (a forked child beside this one). On two threads the fusion's logistic regression took
    6.3 s of CPU for 3.3 s of wall time here, on one 2.1 s of both."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def beside(there: Callable[[], T], here: Callable[[], U]) -> tuple[T, U]:
    """`there()` in a forked child while `here()` runs in this process; both results.

    The child shares this process's memory as it was at the fork (the analyses, the matrix,
    scikit-learn already imported), computes, sends its pickled result through a pipe and
    exits without running any of this process's clean-up. If the child fails, `there()`
    runs here instead, so the result never depends on the fork."""
    if not can_fork():
        return there(), here()
    read_fd, write_fd = os.pipe()
    pid = _fork(thaw=False)
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        os.close(read_fd)
        code = 1
        try:
            payload = pickle.dumps(there(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        mine = here()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.close(read_fd)
        os.waitpid(pid, 0)
        raise
    finally:
        gc.unfreeze()
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        result: T = pickle.loads(payload)
        return result, mine
    log.warning("a forked task failed (exit status %s); running it here", status)
    return there(), mine


_background: list[threading.Thread] = []
WAIT_AT_EXIT = 120.0  # seconds a finishing process waits for its background writes


def in_background(task: Callable[[], None]) -> None:
    """`task()` in a forked child this process does not wait for (writing a cache after the
    work is done, so the first answer need not wait for the disk). A daemon thread reaps the
    child; at exit the process waits for it, so a command that answers and ends still leaves
    the cache complete for the next one. Without fork, `task()` runs here."""
    if not can_fork():
        task()
        return
    pid = _fork(thaw=True)
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            task()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    reaper = threading.Thread(target=_reap, args=(pid,), name=f"reap-{pid}", daemon=True)
    reaper.start()
    if not _background:
        atexit.register(wait_for_background)
    _background.append(reaper)


def _reap(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        log.warning("a background task failed (exit status %s)", status)


def wait_for_background(timeout: float = WAIT_AT_EXIT) -> None:
    """Until every background task of this process has ended (or `timeout` per task)."""
    while _background:
        _background.pop().join(timeout)
