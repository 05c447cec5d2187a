"""``issue --jobs N`` with PDFs: this process signs, N forked processes print; same pages,
same order, a printing failure reported on its own input."""

from __future__ import annotations

import datetime as dt
import os
import signal
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

    def __init__(self) -> None:
        self.jobs: list[issuing.PrintJob] = []

    def submit(self, job: issuing.PrintJob, left: int | None = None) -> Future[Any]:
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
    while the key is decrypted); --jobs N is N of them; they are gone when the pool is."""
    pool = PrintPool.start(3)
    assert pool is not None
    with pool:
        assert len(pool.pids) == 3 and all(_alive(pid) for pid in pool.pids)
    assert not any(_alive(pid) for pid in pool.pids)


def test_pages_queued_per_printing_process(
    tmp_path: Path, demo_credentials: keys.Credentials
) -> None:
    """Each printing process gets up to QUEUED_PER_PROCESS pages, the one it draws included;
    a page more waits for room; for the last pages of a batch, one each."""
    with PrintPool(2) as pool:
        first, second = pool._printers
        never = [Printed(first) for _ in range(QUEUED_PER_PROCESS)]  # nothing sent: pending
        first.pending.extend(never)
        assert pool._room(None) is second
        second.pending.append(Printed(second))
        assert pool._room(None) is second
        assert pool._room(left=0) is None  # the last page: only to a process done with its own
        second.pending.append(Printed(second))
        assert pool._room(None) is None
        first.pending.clear()
        second.pending.clear()
        assert pool._room(left=0) is not None


def test_printed_here_when_every_printing_process_died(
    tmp_path: Path, demo_credentials: keys.Credentials
) -> None:
    """Pages handed to a printing process that died are not printed (the issue pipeline
    reports an internal error on their inputs); once none is left, this process prints."""
    job = _job(tmp_path, demo_credentials, "first")
    with PrintPool(1) as pool:
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lost = pool.submit(job)
        with pytest.raises(PrinterDied):
            lost.result()
        here = pool.submit(_job(tmp_path, demo_credentials, "second"))
        assert here.done() and here.result() is None
    (pdf,) = tmp_path.glob("*.pdf")
    document = printing.load_signed(pdf.with_suffix(".json"))
    assert pdf.read_bytes() == render.pdf_bytes(document, page="A5")


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
