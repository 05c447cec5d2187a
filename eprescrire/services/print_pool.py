"""Processes that print the ordonnances of a batch while this process validates and signs.

``issue --jobs N`` with PDFs (or QR images) forks N - 1 printing processes *before* it
decrypts the prescriber's key (600,000 PBKDF2 iterations): they import reportlab and load the
fonts while the key is decrypted, instead of after it, and they never hold the key. This
process then validates, signs and writes each signed JSON file, and hands the signed document
(without its certificates, which the page does not print) to a printing process, which draws
and writes the PDF and the QR image; when those already have enough pages queued, this process
prints the page itself (signing is much faster than printing), so that N processes are busy,
never N + 1 competing for N cores.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

from eprescrire.services.issuing import IssueResult, PrintJob

#: Pages queued per printing process before this process prints one itself: enough that a
#: printing process never waits for the next page, few enough that the batch ends together.
QUEUED_PER_PROCESS = 2


def _start() -> None:
    from eprescrire import render

    render.preload()


def _print(job: PrintJob) -> IssueResult | None:
    from eprescrire.services.issuing import _print_one

    return _print_one(job)


class PrintPool:
    """``processes`` printing processes, forked now; use as a context manager (``with``)."""

    def __init__(self, processes: int) -> None:
        import gc
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # What is loaded so far stays for the whole batch: out of the collector's reach, a
        # collection in either process does not write to (and so copy) every shared page.
        gc.freeze()
        context = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=context, initializer=_start
        )
        self._depth = QUEUED_PER_PROCESS * processes
        self._queued: list[Future[IssueResult | None]] = []
        # The processes fork at the first task: fork them now, so that they load the drawing
        # libraries while this process decrypts the key and signs the first prescriptions.
        self._pool.submit(int)

    @classmethod
    def start(cls, jobs: int) -> PrintPool | None:
        """The pool for ``--jobs jobs`` (``jobs`` - 1 printing processes beside this one), or
        None where processes cannot be forked (the batch is then printed as it is signed)."""
        import multiprocessing

        try:
            multiprocessing.get_context("fork")
        except ValueError:
            return None
        return cls(max(1, jobs - 1))

    def busy(self) -> bool:
        """Whether the printing processes have enough pages queued for now."""
        self._queued = [future for future in self._queued if not future.done()]
        return len(self._queued) >= self._depth

    def submit(self, job: PrintJob) -> Future[IssueResult | None]:
        """Print ``job`` in one of the processes."""
        light = dataclasses.replace(job.document, certificates=())
        future = self._pool.submit(_print, dataclasses.replace(job, document=light))
        self._queued.append(future)
        return future

    def __enter__(self) -> PrintPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
