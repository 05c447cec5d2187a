"""``eprescrire issue``: validated input -> signed JSON (+ PDF / QR image)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from eprescrire.cli import _common


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)


def issue(
    inputs: list[str] = typer.Argument(
        ...,
        help="Prescription inputs (.toml/.json/.csv), directories, or - (NDJSON or CSV on stdin).",
    ),
    key: Path = typer.Option(
        ..., "--key", help="Prescriber PKCS#12 file, or a pkcs11: URI (RFC 7512) for a token."
    ),
    out: Path | None = typer.Option(None, "--out", help="Signed JSON output (one input only)."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Directory for ID.json (and ID.pdf with --with-pdf)."
    ),
    pdf: Path | None = typer.Option(
        None, "--pdf", help="Also write the printable ordonnance PDF here (one input)."
    ),
    qr: Path | None = typer.Option(
        None, "--qr", help="Also write the QR image here, .png or .svg (one input)."
    ),
    with_pdf: bool = typer.Option(
        False, "--with-pdf", help="With --out-dir: also write ID.pdf for each input."
    ),
    page: str = _common.PAGE_OPTION,
    drugs: Path | None = _common.DRUGS_OPTION,
    jobs: int = _common.jobs_option("sign"),
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    allow_name_mismatch: bool = typer.Option(
        False,
        "--allow-name-mismatch",
        help="Sign even when the prescriber name is not the signing certificate's "
        "(verify then warns).",
    ),
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Validate and sign prescriptions; write the signed JSON documents (and PDFs).

    Output names in --out-dir are ID.json / ID.pdf; an existing file is never overwritten
    (exit 3). With --json, one object per input on stdout: {"input", "status":
    "issued"|"invalid", "reasons", "id", "out", "pdf", "qr"} ("errors" repeats the reasons as
    {"field", "message"} for older scripts).

    With a drug catalogue (--drugs, EPRESCRIRE_DRUGS, or drugs.sqlite3 under EPRESCRIRE_HOME
    after `drugs import`), each line is checked before signing: unknown or mismatched
    CIS/CIP13, a narcotic not marked narcotic, a condition's duration limit (exit 3, the field
    named); missing codes are filled from an unambiguous label; list I/II, hospital-only and
    withdrawn presentations are shown ("warnings", and "filled" for the codes filled in).
    """
    from eprescrire.services import drug_aid, issuing

    issuing.check_request(out, out_dir, page)
    catalogue = drug_aid.catalogue_for(drugs)
    stdin = sys.stdin.buffer.read() if "-" in inputs else None
    sources = tuple(issuing.read_sources(inputs, stdin))
    issuing.check_sources(sources, out, pdf, qr)
    credentials = _common.load_credentials(key, passphrase_file, insecure_key, pin_file)
    if str(key).startswith("pkcs11:"):
        jobs = 1  # a token session does not survive fork(): sign in this process
    request = issuing.IssueRequest(
        sources,
        credentials,
        _common.moment(at),
        out,
        out_dir,
        pdf,
        qr,
        with_pdf,
        page,
        jobs,
        drugs=catalogue,
        allow_name_mismatch=allow_name_mismatch,
    )
    codes: list[int] = []
    with _common.progress(len(sources), "Issuing", enabled=not json_output and not quiet) as step:
        for result in issuing.issue(request):
            codes.append(result.exit_code)
            if json_output:
                _common.emit_json(result.to_json())
            if result.status == "issued":
                if not quiet and not json_output:
                    extra = "".join(f", {p}" for p in (result.pdf, result.qr) if p)
                    step.log(f"[green]✓[/] {result.input} → {result.out}{extra}")
                    for notice in result.filled:
                        step.log(
                            _common.escape(f"    {notice['field']} filled: {notice['message']}")
                        )
                    for notice in result.warnings:
                        text = _common.escape(f"{notice['field']}: {notice['message']}")
                        step.log(f"    [yellow]! {text}[/]")
            elif not (quiet and json_output):
                step.log(f"[red]✗[/] {result.input}: {len(result.reasons)} problem(s)")
                for reason in result.reasons:
                    field = f"{reason['field']}: " if reason.get("field") else ""
                    step.log(f"    {field}{reason['message']}")
            step.advance()
    issued = sum(code == 0 for code in codes)
    if len(sources) > 1 and not quiet:
        _common.console().print(f"{issued} issued, {len(sources) - issued} not issued")
    raise typer.Exit(_common.report_exit(codes))
