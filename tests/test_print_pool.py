"""``issue --jobs N`` with PDFs: this process signs, N forked processes print; same pages,
same order, a printing failure reported on its own input."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLE_FILES
from eprescrire import inputs, keys, render
from eprescrire.errors import ExitCode, InputError
from eprescrire.services import issuing, printing
from eprescrire.services.print_pool import QUEUED_PER_PROCESS, Printed, PrinterDied, PrintPool


def test_printed_in_other_processes_as_in_this_one(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    inputs = [*EXAMPLE_FILES, tmp_path / "missing.toml", *EXAMPLE_FILES]
    out = tmp_path / "out"
    result = run_cli(
        "issue", *inputs, "--key", key_file, "--out-dir", out, "--with-pdf", "--json", "-j", "2"
    )
    summaries = result.json_lines()
    assert [s["input"] for s in summaries] == [str(p) for p in inputs]
    assert [s["status"] for s in summaries].count("invalid") == 1 and result.code == 3
    for summary in summaries:
        if summary["status"] != "issued":
            continue
        document = printing.load_signed(Path(summary["out"]))
        drawn = Path(summary["pdf"]).read_bytes()
        assert drawn == render.pdf_bytes(document, page="A5"), "the page drawn here"
        assert Path(summary["pdf"]).stat().st_mode & 0o777 == 0o600


def test_qr_images_and_a4_through_the_pool(
    tmp_path: Path, key_file: Path, run_cli, cli_env
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "issue", *EXAMPLE_FILES[:3], "--key", key_file, "--out-dir", out, "--with-pdf",
        "--page", "A4", "--json", "--jobs", "3",
    )  # fmt: skip
    assert result.code == 0
    for summary in result.json_lines():
        document = printing.load_signed(Path(summary["out"]))
        assert Path(summary["pdf"]).read_bytes() == render.pdf_bytes(document, page="A4")


class _Pool:
    """Prints in this process; the second job fails as a drawing error would, the third as a
    printing process that died."""

    def __init__(self, busy: bool = False) -> None:
        self.jobs: list[issuing.PrintJob] = []
        self._busy = busy

    def busy(self, left: int | None = None) -> bool:
        return self._busy

    def submit(self, job: issuing.PrintJob) -> Future[Any]:
        self.jobs.append(job)
        future: Future[Any] = Future()
        if len(self.jobs) == 2:
            future.set_result(issuing._failed("", InputError("too large for a QR code")))
        elif len(self.jobs) == 3:
            future.set_exception(RuntimeError("a process of the pool died"))
        else:
            future.set_result(issuing._print_one(job))
        return future


def test_a_printing_failure_is_reported_on_its_input(
    tmp_path: Path, demo_credentials: keys.Credentials
) -> None:
    sources = tuple((str(p), inputs.read_input(p)) for p in EXAMPLE_FILES[:4])
    sources = (*sources[:1], ("bad", InputError("bad: unreadable")), *sources[1:])
    request = issuing.IssueRequest(
        sources, demo_credentials, dt.datetime.now(dt.UTC), out_dir=tmp_path, with_pdf=True, jobs=2
    )
    pool = _Pool()
    results = list(issuing.issue(request, pool))
    assert [r.input for r in results] == [name for name, _ in sources]
    assert [r.status for r in results] == ["issued", "invalid", "invalid", "invalid", "issued"]
    assert results[2].exit_code == ExitCode.UNREADABLE and "QR" in results[2].reasons[0]["message"]
    assert results[3].exit_code == ExitCode.INTERNAL
    assert Path(results[0].pdf or "").read_bytes().startswith(b"%PDF")
    assert len(pool.jobs) == 4  # the unreadable input was never signed nor printed


def test_pages_printed_here_while_the_pool_is_busy(
    tmp_path: Path, demo_credentials: keys.Credentials
) -> None:
    sources = tuple((str(p), inputs.read_input(p)) for p in EXAMPLE_FILES[:3])
    request = issuing.IssueRequest(
        sources, demo_credentials, dt.datetime.now(dt.UTC), out_dir=tmp_path, with_pdf=True, jobs=2
    )
    pool = _Pool(busy=True)
    results = list(issuing.issue(request, pool))
    assert [r.status for r in results] == ["issued"] * 3 and not pool.jobs
    for result in results:
        document = printing.load_signed(Path(result.out or ""))
        assert Path(result.pdf or "").read_bytes() == render.pdf_bytes(document, page="A5")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _job(tmp_path: Path, demo_credentials: keys.Credentials, name: str) -> issuing.PrintJob:
    request = issuing.IssueRequest(
        ((name, inputs.read_input(EXAMPLE_FILES[0])),),
        demo_credentials,
        dt.datetime.now(dt.UTC),
        out_dir=tmp_path,
        with_pdf=True,
    )
    issued, job = issuing._sign_one(request, request.sources[0])
    assert job is not None, issued
    return job


def test_the_pool_is_forked_before_the_key_is_loaded() -> None:
    """The printing processes exist as soon as the pool does (they load the drawing libraries
    while the key is decrypted); --jobs N is N - 1 of them beside this process, which prints
    when they have enough queued; they are gone when the pool is."""
    import eprescrire.pdf_layout  # noqa: F401  (this process has drawn: the steady queue)

    pool = PrintPool.start(3)
    assert pool is not None
    with pool:
        assert len(pool.pids) == 2 and all(_alive(pid) for pid in pool.pids)
        assert not pool.busy()
    assert not any(_alive(pid) for pid in pool.pids)
    with PrintPool(1) as one:
        printer = one._printers[0]
        never = [Printed(printer) for _ in range(QUEUED_PER_PROCESS)]  # nothing sent: pending
        printer.pending.extend(never)
        assert one.busy()
        printer.pending.popleft()
        assert not one.busy()
        # The last page goes to a printing process only when it has nothing left to print.
        assert one.busy(left=0)
        printer.pending.clear()
        assert not one.busy(left=0)


def test_pages_queued_before_this_process_has_drawn(tmp_path: Path) -> None:
    """Until this process has loaded the drawing libraries (its first page costs several),
    the printing processes get more pages queued."""
    from eprescrire.services import print_pool

    assert print_pool.QUEUED_BEFORE_LOADED > QUEUED_PER_PROCESS
    script = (
        "import sys\n"
        "from eprescrire.services.print_pool import PrintPool, Printed, QUEUED_PER_PROCESS\n"
        "with PrintPool(1) as pool:\n"
        "    printer = pool._printers[0]\n"
        "    printer.pending.extend(Printed(printer) for _ in range(QUEUED_PER_PROCESS))\n"
        "    assert not pool.busy() and not pool.busy(left=0)\n"
        "    assert 'eprescrire.pdf_layout' not in sys.modules\n"
        "    printer.pending.clear()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_a_printing_process_that_dies(tmp_path: Path, demo_credentials: keys.Credentials) -> None:
    """A page handed to a printing process that died is reported as not printed (the issue
    pipeline turns it into an internal error on its input); the pool still closes."""
    with PrintPool(1) as pool:
        (pid,) = pool.pids
        first = pool.submit(_job(tmp_path, demo_credentials, "first"))
        assert first.result() is None
        assert len(list(tmp_path.glob("*.pdf"))) == 1
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        second = pool.submit(_job(tmp_path, demo_credentials, "second"))
        with pytest.raises(PrinterDied):
            second.result()
        assert second.done()
    assert len(list(tmp_path.glob("*.pdf"))) == 1


def test_leaving_on_an_error_stops_the_printing_processes(
    tmp_path: Path, demo_credentials: keys.Credentials
) -> None:
    """Leaving the pool on an error: the page being drawn is finished (never a half-written
    file), those queued are not printed, and the processes are gone."""
    jobs = [_job(tmp_path, demo_credentials, f"input-{n}") for n in range(6)]
    with pytest.raises(KeyError), PrintPool(1) as pool:
        (pid,) = pool.pids
        for job in jobs:
            pool.submit(job)
        raise KeyError("stop")
    assert not _alive(pid)
    pdfs = list(tmp_path.glob("*.pdf"))
    assert len(pdfs) < len(jobs)
    for pdf in pdfs:
        assert pdf.read_bytes().rstrip().endswith(b"%%EOF")
        assert pdf.stat().st_mode & 0o777 == 0o600
