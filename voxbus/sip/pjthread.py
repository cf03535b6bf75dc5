"""The pjsua2 library on its own thread.

pjsua aborts the process when called from a thread it does not know, so every pjsua call runs on
this one thread: it polls SIP events and runs the functions submitted to it, in order, between
polls. Media callbacks run on pjmedia's clock thread (registered by pjmedia). Python's garbage
collector may free a pjsua2 object on whichever thread happens to allocate, so the event loop's
thread is registered too (:meth:`PjThread.register_current`), and no other thread is used.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
POLL_MS = 5


class PjThread:
    def __init__(self, name: str = "pjsua") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._poll: Callable[[int], None] | None = None

    def start(self, setup: Callable[[], Callable[[int], None]]) -> None:
        """Run ``setup`` on the thread; it returns the poll function (``ep.libHandleEvents``)."""
        ready: Future[None] = Future()

        def init() -> None:
            try:
                self._poll = setup()
                ready.set_result(None)
            except BaseException as exc:
                ready.set_exception(exc)
                raise

        self._jobs.put((init, Future()))
        self._thread.start()
        ready.result(timeout=30)

    @staticmethod
    def register_current(name: str) -> None:
        """Make the calling thread known to pjlib (after ``start``)."""
        import pjsua2 as pj

        endpoint = pj.Endpoint.instance()
        if not endpoint.libIsThreadRegistered():
            endpoint.libRegisterThread(name)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    def stop(self, teardown: Callable[[], None], timeout_s: float = 10.0) -> None:
        """Run ``teardown`` (which destroys the library) as the thread's last job."""

        def last() -> None:
            self._poll = None  # never poll a destroyed library
            self._stop.set()
            teardown()

        done = self.submit(last)
        try:
            done.result(timeout=timeout_s)
        finally:
            self._stop.set()
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            while True:
                try:
                    fn, future = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # reported to whoever submitted it
                        future.set_exception(exc)
            if self._poll is not None:
                self._poll(POLL_MS)
