"""``status``, ``cancel`` and ``consent``: parse, call
:mod:`eprescrire.services.prescriptions`, print."""

from __future__ import annotations

from pathlib import Path

import typer

from eprescrire.cli import _common, _views
from eprescrire.errors import ExitCode, UsageError


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("cancel")(cancel)
    app.command("consent")(consent)


def status(
    identifier: str = typer.Argument(
        ...,
        metavar="ID",
        help="Prescription identifier (XXXXX-XXXXX-XXXXX, or XXXX-XXXX-XXXX-XXXX for older ones).",
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    as_prescriber: bool = typer.Option(
        False,
        "--as-prescriber",
        help="The prescriber's view: prove you hold the signing key (--key).",
    ),
    key: Path | None = typer.Option(
        None, "--key", help="Prescriber PKCS#12 file or pkcs11: URI (with --as-prescriber)."
    ),
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Dispensing state of one prescription: per line prescribed / dispensed / remaining,
    renewals used, every dispensing event."""
    from eprescrire.dispensing import Refused
    from eprescrire.services import context, prescriptions

    pid = context.parse_id(identifier)
    if as_prescriber and key is None:
        raise UsageError("--as-prescriber needs --key (the key that signed the prescription)")
    if key is not None and not as_prescriber:
        raise UsageError("--key is for --as-prescriber")
    when = _common.moment(at)
    with _common.open_ledger(ledger, create=False) as book:
        # Read first: an unknown prescription is said before any passphrase is asked.
        known = prescriptions.recorded(identifier, book)
        credentials = None
        if key is not None:
            credentials = _common.load_credentials(key, passphrase_file, insecure_key, pin_file)
        request = prescriptions.StatusRequest(identifier, when, credentials)
        try:
            result = prescriptions.status(request, book, known)
        except Refused as e:
            if json_output:
                _common.emit_json(prescriptions.refusal_json(identifier, pid, e))
            _views.print_refusal(e, quiet)
            raise typer.Exit(int(ExitCode.REJECTED)) from None
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        _views.show_status(result.state, to_stderr=json_output)


def cancel(
    target: str = typer.Argument(
        ...,
        metavar="RX|ID",
        help="The signed prescription (rx.json) or its identifier, if the ledger knows it.",
    ),
    key: Path = typer.Option(
        ..., "--key", help="The PKCS#12 file or pkcs11: URI that signed the prescription."
    ),
    reason: str = typer.Option(
        ..., "--reason", help="Why the prescription is cancelled (recorded, signed)."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    trust: Path | None = _common.TRUST_OPTION,
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Also write the signed cancellation here, for `ledger import` elsewhere.",
    ),
    at: str | None = _common.WRITE_AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Cancel a prescription: sign a cancellation with the prescription's own key and record it.

    A signed prescription given as RX is verified against the trust store first (as by
    `verify`, an expired one included), and the ledger learns it. Without a trust store, the
    ledger never learns a prescription from the document alone: the cancellation is kept with
    its signer and takes effect only on the prescription that signer signed."""
    from eprescrire import config, ids, wording
    from eprescrire.dispensing import Refused
    from eprescrire.services import prescriptions

    _common.refuse_write_clock(at, "cancel")
    when = _common.moment(None)
    store = None
    if Path(target).is_file() and (trust is not None or config.trust_dir(None).is_dir()):
        store = _common.open_trust(trust)
    request = prescriptions.CancelRequest(target, reason, when, store, out)
    prepared = prescriptions.prepare_cancel(request)
    credentials = _common.load_credentials(key, passphrase_file, insecure_key, pin_file)
    with _common.open_ledger(ledger, create=prepared.may_create_ledger) as book:
        try:
            result = prescriptions.cancel(prepared, credentials, book)
        except Refused as e:
            if json_output:
                _common.emit_json(prescriptions.refusal_json(target, prepared.id, e))
            _views.print_refusal(e, quiet)
            raise typer.Exit(int(ExitCode.REJECTED)) from None
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        console = _common.console(stderr=json_output)
        console.print(f"[bold red]{wording.status('cancelled')}[/] {ids.grouped(result.id)}")
        for note in result.notes:
            console.print(f"  {wording.reason_detail(note)}")
        if out is not None:
            console.print(f"  annulation signée écrite dans {out}")


def consent(
    identifier: str = typer.Argument(..., metavar="ID", help="Prescription identifier."),
    oppose: bool = typer.Option(
        False, "--oppose", help="The patient opposes sharing dispensing data with the prescriber."
    ),
    allow: bool = typer.Option(False, "--allow", help="The patient withdraws that opposition."),
    key: Path = typer.Option(
        ...,
        "--key",
        help="Who records it, and signs it: pharmacy credentials (keys pharmacy), or the "
        "prescriber's key that signed the prescription.",
    ),
    pharmacist: str | None = typer.Option(
        None,
        "--pharmacist",
        help="RPPS of the pharmacist recording it (when the pharmacy key names none).",
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    trust: Path | None = _common.TRUST_OPTION,
    at: str | None = _common.WRITE_AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    pin_file: Path | None = _common.PIN_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Record the patient's choice about sharing dispensing data with the prescriber, signed
    by who records it (a pharmacy, checked against the trust store, or the prescriber)."""
    from eprescrire.dispensing import Refused
    from eprescrire.pharmacy import identity_of
    from eprescrire.services import prescriptions

    _common.refuse_write_clock(at, "consent")
    if oppose == allow:
        raise UsageError("say --oppose or --allow")
    request = prescriptions.ConsentRequest(identifier, oppose, _common.moment(None), pharmacist)
    credentials = _common.load_credentials(key, passphrase_file, insecure_key, pin_file)
    store = None
    if identity_of(credentials.certificate) is not None:
        store = _common.open_trust(trust)
    with _common.open_ledger(ledger, create=False) as book:
        try:
            result = prescriptions.consent(request, book, credentials, store)
        except Refused as e:
            if json_output:
                _common.emit_json(prescriptions.refusal_json(identifier, None, e))
            _views.print_refusal(e, quiet)
            raise typer.Exit(int(ExitCode.REJECTED)) from None
    if json_output:
        _common.emit_json(result.to_json())
    if not quiet:
        from eprescrire import wording

        _common.console(stderr=json_output).print(wording.consent(oppose))
