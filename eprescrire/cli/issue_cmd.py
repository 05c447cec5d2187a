"""``eprescrire issue``: validated input -> signed JSON (+ PDF / QR image)."""

from __future__ import annotations

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
    from eprescrire.cli import _issue

    code = _issue.run(
        inputs,
        key=key,
        out=out,
        out_dir=out_dir,
        pdf=pdf,
        qr=qr,
        with_pdf=with_pdf,
        page=page,
        drugs=drugs,
        jobs=jobs,
        at=at,
        json_output=json_output,
        quiet=quiet,
        passphrase_file=passphrase_file,
        pin_file=pin_file,
        insecure_key=insecure_key,
        allow_name_mismatch=allow_name_mismatch,
    )
    raise typer.Exit(code)
