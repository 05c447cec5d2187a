"""Processes that print the ordonnances of a batch while this process validates and signs.

``issue --jobs N`` with PDFs (or QR images) forks N printing processes *before* it decrypts
the prescriber's key (600,000 PBKDF2 iterations): they import reportlab and load the fonts
while the key is decrypted, and they never hold the key. This process then validates, signs
and writes each signed JSON file, and hands the signed document (without its certificates,
which the page does not print) to a printing process, which draws and writes the PDF and the
QR image. Drawing a page costs ten times what signing it does: the N printing processes keep
the N cores busy, and this process, asleep while they have enough queued, takes its share of
a core only to sign the next pages.

This process never draws a page. One that draws too (N - 1 printing processes beside it)
must load reportlab a second time once the key is decrypted, while its printing process,
given pages only when this one has signed them, idles meanwhile; and a printing process runs
out of pages whenever this one draws a page longer than the ones queued. Here the key is
decrypted while both printing processes load reportlab (three processes, two cores: none
idle), and a printing process gets its next page within a few milliseconds of finishing one,
whatever page it is.

Each printing process is one ``fork()`` and one socket pair, with no thread on either side:
this process writes a page straight into the socket (a few kilobytes: the buffer holds it)
and reads the outcomes when it looks or waits for room. Every printing process has up to two
pages queued (the one it draws and the next), one near the end of the batch so that they all
end together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import deque
from typing import TYPE_CHECKING, Any

from eprescrire.services.issuing import IssueResult, PrintJob, _print_one

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

#: Pages queued per printing process (the one it draws included): the next one is waiting
#: in the socket when it finishes a page. One only for the last pages of a batch.
QUEUED_PER_PROCESS = 2


class PrinterDied(RuntimeError):
    """A printing process ended before it reported on every page it was given."""


class Printed:
    """The outcome of a page handed to a printing process: :meth:`result` is None when the
    page was printed, else the failure (an :class:`IssueResult` with ``input`` left empty);
    it raises :class:`PrinterDied` when the process died first."""

    def __init__(self, printer: _Printer | None) -> None:
        self._printer = printer
        self._done = False
        self._value: IssueResult | None = None
        self._error: Exception | None = None

    def _set(self, value: IssueResult | None, error: Exception | None = None) -> None:
        self._value, self._error, self._done = value, error, True

    def done(self) -> bool:
        """Whether the outcome is known (reads what the process has sent, never waits)."""
        if not self._done and self._printer is not None:
            self._printer.collect(wait=False)
        return self._done

    def result(self) -> IssueResult | None:
        """The outcome, waiting for it if need be."""
        while not self._done and self._printer is not None:
            self._printer.collect(wait=True)
        if self._error is not None:
            raise self._error
        return self._value


class _Printer:
    """One forked printing process and this process's end of its socket."""

    def __init__(self, pid: int, connection: Connection) -> None:
        self.pid = pid
        self.connection: Connection | None = connection
        self.pending: deque[Printed] = deque()

    def send(self, job: PrintJob) -> Printed:
        printed = Printed(self)
        if self.connection is None:
            printed._set(None, PrinterDied("the printing process has ended"))
            return printed
        try:
            self.connection.send(job)
        except OSError as e:  # the process is gone: its pages are not printed
            self._died(e)
            printed._set(None, PrinterDied(f"the printing process has ended ({e})"))
            return printed
        self.pending.append(printed)
        return printed

    def collect(self, wait: bool) -> None:
        """Take every outcome already sent (with ``wait``, at least one, or the process's end)."""
        connection = self.connection
        while self.pending and connection is not None:
            try:
                if not (wait or connection.poll()):
                    return
                outcome = connection.recv()
            except (EOFError, OSError) as e:
                self._died(e)
                return
            self.pending.popleft()._set(outcome)
            wait = False

    def _died(self, error: BaseException) -> None:
        for printed in self.pending:
            printed._set(None, PrinterDied(f"the printing process ended early ({error!r})"))
        self.pending.clear()
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _serve(connection: Connection) -> None:
    """The printing process: print each job received, send back its outcome, until the
    socket closes."""
    import signal

    from eprescrire import render

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Ctrl-C reaches the whole process group: the parent reports it and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (the parent leaving on an error): finish the page being drawn, so that no file
    # is left half written, and print none of those queued.
    signal.signal(signal.SIGTERM, stop)
    render.preload()
    while not stopping:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if stopping:
            return
        try:
            connection.send(_print_one(job))
        except OSError:
            return


class PrintPool:
    """``processes`` printing processes, forked now; use as a context manager (``with``)."""

    def __init__(self, processes: int) -> None:
        import gc
        import sys
        from multiprocessing.connection import Pipe

        self._printers: list[_Printer] = []
        # What is loaded so far stays for the whole batch: out of the collector's reach, a
        # collection in either process does not write to (and so copy) every shared page.
        gc.freeze()
        # Output buffered here must not be written a second time by a printing process.
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(processes):
            ours, theirs = Pipe(duplex=True)
            pid = os.fork()
            if pid == 0:  # the printing process: never returns into the caller's code
                status = 1
                try:
                    ours.close()
                    for printer in self._printers:
                        printer.close()
                    _serve(theirs)
                    status = 0
                finally:
                    os._exit(status)
            theirs.close()
            self._printers.append(_Printer(pid, ours))

    @classmethod
    def start(cls, jobs: int) -> PrintPool | None:
        """The pool for ``--jobs jobs`` (as many printing processes), or None where processes
        cannot be forked (the batch is then printed as it is signed)."""
        if not hasattr(os, "fork"):
            return None
        return cls(max(1, jobs))

    @property
    def pids(self) -> list[int]:
        """The process id of each printing process."""
        return [printer.pid for printer in self._printers]

    def _room(self, left: int | None) -> _Printer | None:
        """The live printing process with the fewest pages queued if it has room for one
        more (read what came back first), else None; ``left``: pages still to come after
        this one (None: many)."""
        depth = QUEUED_PER_PROCESS
        if left is not None and left < QUEUED_PER_PROCESS * len(self._printers):
            depth = 1  # the last pages: each to the first process done with the one it draws
        best: _Printer | None = None
        for printer in self._printers:
            printer.collect(wait=False)
            if printer.connection is None or len(printer.pending) >= depth:
                continue
            if best is None or len(printer.pending) < len(best.pending):
                best = printer
        return best

    def submit(self, job: PrintJob, left: int | None = None) -> Printed:
        """Print ``job`` in a printing process, waiting until one has room for it (see
        :data:`QUEUED_PER_PROCESS`); with every printing process dead, print it here."""
        from multiprocessing.connection import wait

        while True:
            printer = self._room(left)
            if printer is not None:
                light = dataclasses.replace(job.document, certificates=())
                return printer.send(dataclasses.replace(job, document=light))
            live = [p.connection for p in self._printers if p.connection is not None]
            if not live:
                here = Printed(None)
                here._set(_print_one(job))
                return here
            wait(live)  # an outcome to read, or a process that ended

    def __enter__(self) -> PrintPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        """Wait for the pages handed over (unless leaving on an error) and for the processes."""
        import signal

        for printer in self._printers:
            if exc[0] is None:
                while printer.pending:
                    printer.collect(wait=True)
            elif printer.pending:  # leaving on an error: the pages queued are not wanted
                with contextlib.suppress(ProcessLookupError):
                    os.kill(printer.pid, signal.SIGTERM)
            printer.close()  # end of its socket: the process returns
        for printer in self._printers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(printer.pid, 0)
