"""Processes that print the ordonnances of a batch while this process validates and signs.

``issue --jobs N`` with PDFs (or QR images) forks N printing processes *before* it decrypts
the prescriber's key (600,000 PBKDF2 iterations): they import reportlab and load the fonts
while the key is decrypted, instead of after it, and they never hold the key. This process
then validates, signs and writes each signed JSON file, and hands the signed document
(without its certificates, which the page does not print) to a printing process, which draws
and writes the PDF and the QR image.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

from eprescrire.services.issuing import IssueResult, PrintJob


def _start() -> None:
    from eprescrire import render

    render.preload()


def _print(job: PrintJob) -> IssueResult | None:
    from eprescrire.services.issuing import _print_one

    return _print_one(job)


class PrintPool:
    """``jobs`` printing processes, forked now; use as a context manager (``with``)."""

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start)
        # The processes fork at the first task: fork them now, so that they load the drawing
        # libraries while this process decrypts the key and signs the first prescriptions.
        self._pool.submit(int)

    @classmethod
    def start(cls, jobs: int) -> PrintPool | None:
        """A pool of ``jobs`` processes, or None where processes cannot be forked (the batch
        is then printed as it is signed)."""
        import multiprocessing

        try:
            multiprocessing.get_context("fork")
        except ValueError:
            return None
        return cls(jobs)

    def submit(self, job: PrintJob) -> Future[IssueResult | None]:
        """Print ``job`` in one of the processes."""
        light = dataclasses.replace(job.document, certificates=())
        return self._pool.submit(_print, dataclasses.replace(job, document=light))

    def __enter__(self) -> PrintPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
