"""``dispense``, ``status``, ``cancel``, ``consent`` and ``ledger verify|export|checkpoint|import``.

Parse, call :mod:`eprescrire.dispensing` / :mod:`eprescrire.ledger`, print. Exit codes: 0 done,
1 refused (with a reason code), 2 usage, 3 unreadable input, 4 ledger or key unavailable.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import typer

from eprescrire.cli import _common
from eprescrire.errors import ExitCode, InputError, UsageError

ledger_app = typer.Typer(
    name="ledger",
    help="Check the ledger's hash chain, export it, checkpoint its head, import cancellations.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("dispense")(dispense)
    app.command("status")(status)
    app.command("cancel")(cancel)
    app.command("consent")(consent)
    app.add_typer(ledger_app, name="ledger")


def _open(location: str | None, *, create: bool) -> Any:
    from eprescrire import config
    from eprescrire.ledger import open_ledger

    return open_ledger(config.ledger_location(location), create=create)


def _parse_id(text: str) -> str:
    from eprescrire import ids

    try:
        return ids.parse(text)
    except ValueError as e:
        raise UsageError(f"{text!r} is not a prescription identifier: {e}") from e


def _out(json_output: bool) -> Any:
    return _common.console(stderr=json_output)


# --------------------------------------------------------------------------------------------
# dispense


def _signer_certificate(verdict: Any, store: Any, data: bytes | None) -> Any:
    """The verified signer's certificate: from the trust store, else from the signed document."""
    from eprescrire import signing
    from eprescrire.errors import VerificationError
    from eprescrire.keys import kid_of

    kid = verdict.signer.kid
    certificate = store.find_signer(kid)
    if certificate is None and data is not None and data.lstrip().startswith(b"{"):
        try:
            _, certificates, _ = signing.parse_document(data)
        except VerificationError:
            return None
        certificate = next((c for c in certificates if kid_of(c) == kid), None)
    return certificate


def _verify_for_dispense(item: tuple[str, Any]) -> tuple[list[Any], bytes | None]:
    """Verify one input (in a worker process or in-process): its verdicts, and its bytes when
    it is a small file (a signed JSON document carries the signer certificate)."""
    from eprescrire import batch, verifying

    name, when = item
    options = batch.shared("dispense")
    data: bytes | None = None
    stdin = None
    if name == "-":
        data = options["stdin"]
        stdin = io.BytesIO(data)
    else:
        path = Path(name)
        try:
            if path.is_file() and path.stat().st_size <= verifying.MAX_TEXT_BYTES:
                data = path.read_bytes()
        except OSError:
            data = None
    verdicts = list(
        verifying.verify_input(
            name, batch.shared("trust"), when, engine=options["engine"], stdin=stdin
        )
    )
    return verdicts, data


def _batch_rows(path: Path, defaults: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(input, Request or Error, when) for each row of a dispensing CSV.

    Columns: ``input`` (required), ``line`` and ``quantity`` (empty line: everything due),
    ``substitute``, ``pharmacist`` and ``pharmacy`` (default: the command's options), ``at``
    (default: --at or now). Relative inputs are relative to the CSV file.
    """
    import csv

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the dispensing batch ({e})") from e
    try:
        return _parse_batch_rows(path, text, defaults)
    except csv.Error as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from e


def _parse_batch_rows(
    path: Path, text: str, defaults: dict[str, Any]
) -> list[tuple[str, Any, Any]]:
    import csv

    from eprescrire import config, dispensing
    from eprescrire.errors import Error

    reader = csv.DictReader(io.StringIO(text))
    allowed = {"input", "line", "quantity", "substitute", "pharmacist", "pharmacy", "at"}
    if not reader.fieldnames or "input" not in reader.fieldnames:
        raise InputError(f"{path}: a dispensing batch needs an 'input' column")
    unknown = set(reader.fieldnames) - allowed
    if unknown:
        raise InputError(f"{path}: unknown column(s): {', '.join(sorted(unknown))}")
    rows: list[tuple[str, Any, Any]] = []
    for number, row in enumerate(reader, start=2):
        cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
        name = cell.get("input", "")
        if name and name != "-" and not Path(name).is_absolute():
            name = str(path.parent / name)
        try:
            if not name:
                raise InputError(f"{path}:{number}: empty input")
            pharmacist = cell.get("pharmacist") or defaults["pharmacist"]
            if not pharmacist:
                raise UsageError(f"{path}:{number}: no pharmacist (column or --pharmacist)")
            pharmacy = cell.get("pharmacy") or defaults["pharmacy"]
            line = int(cell["line"]) if cell.get("line") else None
            quantity = int(cell["quantity"]) if cell.get("quantity") else None
            request: Any = dispensing.Request(
                pharmacist=dispensing.check_rpps(pharmacist),
                line=line,
                quantity=quantity,
                substitute=cell.get("substitute") or None,
                pharmacy=None if not pharmacy else dispensing.check_finess(pharmacy),
            )
            when = config.parse_moment(cell["at"]) if cell.get("at") else defaults["when"]
        except ValueError as e:
            request, when = InputError(f"{path}:{number}: {e}"), defaults["when"]
        except Error as e:
            message = str(e) if str(e).startswith(f"{path}:") else f"{path}:{number}: {e}"
            request, when = InputError(message), defaults["when"]
        rows.append((name or f"{path}:{number}", request, when))
    return rows


def dispense(
    inputs: list[str] | None = typer.Argument(
        None,
        metavar="INPUT...",
        help="Scans/photos/PDFs, signed JSON, QR text files, or - for QR text on stdin (one code each).",
    ),
    pharmacist: str | None = typer.Option(
        None, "--pharmacist", help="RPPS of the dispensing pharmacist (11 digits, Luhn key)."
    ),
    line: int | None = typer.Option(
        None, "--line", help="Dispense this line only (numbered from 1, as printed)."
    ),
    quantity: int | None = typer.Option(
        None, "--quantity", help="With --line: units to hand over (default: all that is due now)."
    ),
    all_lines: bool = typer.Option(
        False, "--all", help="Dispense everything that is due now on every line."
    ),
    substitute: str | None = typer.Option(
        None,
        "--substitute",
        metavar="GENERIC_LABEL",
        help="With --line: the generic handed over instead (refused on a non-substituable line).",
    ),
    pharmacy: str | None = typer.Option(
        None,
        "--pharmacy",
        metavar="FINESS",
        help="FINESS of the pharmacy (9 characters, Luhn key).",
    ),
    batch_file: Path | None = typer.Option(
        None,
        "--batch",
        metavar="FILE.csv",
        help="A day's dispensings, one per row: input,line,quantity,substitute,pharmacist,pharmacy,at.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Processes to verify with."),
    trust: Path | None = _common.TRUST_OPTION,
    ledger: str | None = _common.LEDGER_OPTION,
    at: str | None = _common.AT_OPTION,
    engine: str = typer.Option(
        "zxing", "--engine", help="QR decoding engine for images: zxing or zbar."
    ),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Verify prescriptions, then record what is handed over in the ledger (refusing what the
    prescription or the law does not allow).

    Several inputs get the same request; --batch FILE.csv gives one request per row. Inputs are
    verified (with --jobs processes) and recorded one after the other, in order; one refused or
    unreadable input does not stop the others. With --json, one object per input:
    {"input", "status": "dispensed"|"refused"|"rejected"|"unreadable", "id", "reasons",
    "dispensed", "dispensing", ...}.
    """
    from eprescrire import batch, dispensing
    from eprescrire.errors import Error

    if engine not in ("zxing", "zbar"):
        raise UsageError("--engine must be zxing or zbar")
    when = _common.moment(at)
    if batch_file is not None:
        if inputs:
            raise UsageError("give inputs on the command line or --batch FILE.csv, not both")
        if line is not None or quantity is not None or all_lines or substitute is not None:
            raise UsageError("with --batch, lines and quantities come from the CSV rows")
        rows = _batch_rows(
            batch_file, {"pharmacist": pharmacist, "pharmacy": pharmacy, "when": when}
        )
    else:
        if not inputs:
            raise UsageError("give the prescriptions to dispense, or --batch FILE.csv")
        if pharmacist is None:
            raise UsageError("--pharmacist is required")
        if all_lines == (line is not None):
            raise UsageError("say what to dispense: --line N [--quantity Q] or --all")
        request = dispensing.Request(
            pharmacist=dispensing.check_rpps(pharmacist),
            line=line,
            quantity=quantity,
            substitute=substitute,
            pharmacy=None if pharmacy is None else dispensing.check_finess(pharmacy),
        )
        rows = [(name, request, when) for name in inputs]
    if sum(name == "-" for name, _, _ in rows) > 1:
        raise UsageError("standard input (-) can be read once")
    store = _common.open_trust(trust)
    from eprescrire.cli import read_stdin

    stdin = read_stdin() if any(name == "-" for name, _, _ in rows) else b""
    batch.share(trust=store, dispense={"engine": engine, "stdin": stdin})
    codes: list[int] = []
    with (
        _open(ledger, create=True) as handle,
        _common.progress(len(rows), "Dispensing", enabled=not json_output and not quiet) as step,
    ):
        verified = batch.run(
            _verify_for_dispense,
            [(name, row_when) for name, _, row_when in rows],
            min(jobs, max(1, len(rows))),
            chunksize=1,
        )
        for (name, request, row_when), (verdicts, data) in zip(rows, verified, strict=True):
            if isinstance(request, Error):
                # A bad row (mistyped RPPS, no input, ...) is unreadable input; the others go on.
                result = {
                    "input": name,
                    "status": "unreadable",
                    "reasons": [{"code": "unreadable_input", "message": str(request)}],
                    "dispensed": [],
                }
                codes.append(int(ExitCode.UNREADABLE))
                _report(result, json_output, quiet)
            else:
                codes.append(
                    _record(
                        handle, store, name, verdicts, data, request, row_when, json_output, quiet
                    )
                )
            step.advance()
    if len(rows) > 1 and not quiet:
        done = sum(code == 0 for code in codes)
        _common.console().print(f"{len(rows)} inputs: {done} dispensed, {len(rows) - done} not")
    raise typer.Exit(_common.batch_exit(codes))


def _record(
    handle: Any,
    store: Any,
    name: str,
    verdicts: list[Any],
    data: bytes | None,
    request: Any,
    when: Any,
    json_output: bool,
    quiet: bool,
) -> int:
    """Record one verified input in the ledger; report it; return its exit code."""
    from eprescrire import dispensing
    from eprescrire.errors import Reason

    if len(verdicts) != 1:
        result: dict[str, Any] = {
            "input": name,
            "status": "unreadable",
            "reasons": [
                {
                    "code": "unreadable_input",
                    "message": f"{len(verdicts)} prescription codes found; dispense one at a time",
                }
            ],
            "dispensed": [],
        }
        _report(result, json_output, quiet)
        return int(ExitCode.UNREADABLE)
    verdict = verdicts[0]
    result = verdict.to_json()
    result.update(status=verdict.status, dispensed=[])
    # Expiry is the ledger's call: a prescription first dispensed in time may still be renewed.
    blocking = [r for r in verdict.reasons if r.code is not Reason.EXPIRED]
    if blocking or not verdict.authentic:
        _report(result, json_output, quiet)
        return int(verdict.exit_code)
    assert verdict.prescription and verdict.token and verdict.signer  # authentic, so present
    presented = dispensing.Presented(
        verdict.prescription,
        verdict.token,
        verdict.signer.kid,
        _signer_certificate(verdict, store, data),
    )
    try:
        outcome = dispensing.dispense(handle, presented, request, when)
    except dispensing.Refused as e:
        state = dispensing.state_of(
            presented.prescription, presented.kid, handle.history(verdict.id)
        )
        result.update(status="refused", reasons=e.to_json(), dispensing=state.to_json(when))
        _report(result, json_output, quiet)
        return int(ExitCode.REJECTED)
    assert outcome.state is not None
    result.update(
        status="dispensed",
        reasons=[],
        dispensed=dispensing.lines_from(outcome.records),
        dispensing=outcome.state.to_json(when),
    )
    _report(result, json_output, quiet)
    return 0


_LABELS = {
    "dispensed": ("green", "DISPENSED"),
    "refused": ("red", "REFUSED"),
    "rejected": ("red", "REJECTED"),
    "unreadable": ("yellow", "UNREADABLE"),
    "valid": ("green", "VALID"),
}


def _report(result: dict[str, Any], json_output: bool, quiet: bool) -> None:
    if json_output:
        _common.emit_json(result)
    if quiet:
        return
    from eprescrire import ids
    from eprescrire.cli._output import escape

    out = _out(json_output)
    colour, label = _LABELS[result["status"]]
    ident = f" {ids.grouped(result['id'])}" if result.get("id") else ""
    out.print(f"[bold {colour}]{label}[/]{ident}  [dim]{escape(result['input'])}[/]")
    for reason in result["reasons"]:
        out.print(f"  [{colour}]✗ {reason['code']}[/]: {escape(reason['message'])}")
    state = result.get("dispensing")
    labels = {item["line"]: item["label"] for item in state["lines"]} if state else {}
    for item in result["dispensed"]:
        generic = f" (substituted: {escape(item['generic'])})" if item["substituted"] else ""
        out.print(
            f"  ✓ line {item['line']}: {item['quantity']} × {escape(labels.get(item['line'], ''))}"
            f"{generic} — dispensing {item['dispensing']}"
        )
    if state:
        _show_lines(out, state)


def _show_lines(out: Any, state: dict[str, Any]) -> None:
    from eprescrire.cli._output import escape

    for item in state["lines"]:
        if "dispensed" not in item:
            continue
        due = f", next due {item['next_due']}" if item.get("next_due") else ""
        now = f", {item['available_now']} available now" if item.get("available_now") else ""
        out.print(
            f"    line {item['line']}: {item['dispensed']}/{item['prescribed']} dispensed, "
            f"{item['remaining']} remaining, renewals used {item['renewals_used']}/{item['renewals']}"
            f"{now}{due}  [dim]{escape(item['label'])}[/]"
        )


# --------------------------------------------------------------------------------------------
# status


def status(
    identifier: str = typer.Argument(
        ..., metavar="ID", help="Prescription identifier (XXXX-XXXX-XXXX-XXXX)."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    as_prescriber: bool = typer.Option(
        False,
        "--as-prescriber",
        help="The prescriber's view: prove you hold the signing key (--key).",
    ),
    key: Path | None = typer.Option(
        None, "--key", help="Prescriber PKCS#12 file (with --as-prescriber)."
    ),
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Dispensing state of one prescription: per line prescribed / dispensed / remaining,
    renewals used, every dispensing event."""
    from eprescrire import dispensing

    pid = _parse_id(identifier)
    if as_prescriber and key is None:
        raise UsageError("--as-prescriber needs --key (the key that signed the prescription)")
    if key is not None and not as_prescriber:
        raise UsageError("--key is for --as-prescriber")
    when = _common.moment(at)
    with _open(ledger, create=False) as handle:
        history = handle.history(pid)
    presented, problem = dispensing.recorded_prescription(history)
    if presented is None:
        if problem:
            raise InputError(problem)
        pending = " (a cancellation is recorded for it)" if history.records else ""
        raise InputError(f"the ledger has no record of prescription {pid}{pending}")
    state = dispensing.state_of(presented.prescription, presented.kid, history)
    details = True
    if as_prescriber:
        assert key is not None
        credentials = _common.load_credentials(key, passphrase_file, insecure_key)
        try:
            dispensing.prove_possession(credentials, presented.certificate, presented.kid)
        except dispensing.Refused as e:
            if json_output:
                _common.emit_json({"id": pid, "status": "refused", "reasons": e.to_json()})
            _print_refusal(e, quiet)
            raise typer.Exit(int(ExitCode.REJECTED)) from None
        details = not state.opposition
    result = state.to_json(when, details=details)
    result["view"] = "prescriber" if as_prescriber else "pharmacy"
    if json_output:
        _common.emit_json(result)
    if not quiet:
        _show_status(result, to_stderr=json_output)


def _print_refusal(error: Any, quiet: bool) -> None:
    if not quiet:
        _common.console().print(f"[bold red]REFUSED[/] ✗ {error.code.value}: {error.message}")


def _show_status(result: dict[str, Any], *, to_stderr: bool) -> None:
    from eprescrire import ids
    from eprescrire.cli._output import escape

    out = _common.console(stderr=to_stderr)
    flags = []
    if result["cancelled"]:
        flags.append(
            f"[red]CANCELLED[/] {result['cancelled']['at']}: {escape(str(result['cancelled']['reason']))}"
        )
    if result["fully_dispensed"]:
        flags.append("[green]fully dispensed[/]")
    out.print(f"[bold]{ids.grouped(result['id'])}[/]  " + "  ".join(flags))
    if "withheld" in result:
        for item in result["lines"]:
            out.print(
                f"    line {item['line']}: {item['prescribed']} prescribed  [dim]{escape(item['label'])}[/]"
            )
        out.print(f"  [yellow]Dispensing details withheld: {result['withheld']}.[/]")
        return
    _show_lines(out, result)
    for item in result["lines"]:
        for event in item["events"]:
            generic = f", substituted by {escape(event['generic'])}" if event["substituted"] else ""
            pharmacy = f", pharmacy {event['pharmacy']}" if event["pharmacy"] else ""
            out.print(
                f"      #{event['seq']} {event['at']} line {event['line']} dispensing {event['dispensing']}: "
                f"{event['quantity']} by RPPS {event['pharmacist']}{pharmacy}{generic}"
            )
    if result["share_opposition"]:
        out.print("  [dim]The patient opposed sharing dispensing data with the prescriber.[/]")


# --------------------------------------------------------------------------------------------
# cancel, consent


def cancel(
    target: str = typer.Argument(
        ...,
        metavar="RX|ID",
        help="The signed prescription (rx.json) or its identifier, if the ledger knows it.",
    ),
    key: Path = typer.Option(..., "--key", help="The PKCS#12 file that signed the prescription."),
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
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Cancel a prescription: sign a cancellation with the prescription's own key and record it.

    A signed prescription given as RX is verified against the trust store first (as by
    `verify`, an expired one included), and the ledger learns it. Without a trust store, the
    ledger never learns a prescription from the document alone: the cancellation is kept with
    its signer and takes effect only on the prescription that signer signed."""
    from eprescrire import cancellation, config, dispensing, signing
    from eprescrire.errors import VerificationError

    when = _common.moment(at)
    presented = None
    from_document = False
    path = Path(target)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"{target}: {e.strerror}") from e
        if trust is not None or config.trust_dir(None).is_dir():
            store = _common.open_trust(trust)
            verdict = signing.verify_document(target, data, store, when)
            if not verdict.authentic:
                codes = ", ".join(r.code.value for r in verdict.reasons)
                raise InputError(f"{target}: not a trusted signed prescription ({codes})")
            assert verdict.prescription and verdict.token and verdict.signer
            presented = dispensing.Presented(
                verdict.prescription,
                verdict.token,
                verdict.signer.kid,
                _signer_certificate(verdict, store, data),
            )
            pid: str = verdict.prescription.id
        else:
            try:
                pid = signing.load_document(data).prescription.id
            except VerificationError as e:
                raise InputError(f"{target}: not a signed prescription ({e})") from e
            from_document = True
    else:
        pid = _parse_id(target)
    try:
        cancellation.check_reason(reason)
    except ValueError as e:
        raise UsageError(f"--reason: {e}") from e
    credentials = _common.load_credentials(key, passphrase_file, insecure_key)
    signed = cancellation.sign_cancellation(pid, reason, when, credentials)
    with _open(ledger, create=path.is_file()) as handle:
        if presented is None and not from_document and not handle.history(pid).known:
            raise InputError(
                f"the ledger has no record of prescription {pid}: give the signed document (rx.json)"
            )
        try:
            outcome = dispensing.record_cancellation(handle, signed, presented)
        except dispensing.Refused as e:
            if json_output:
                _common.emit_json({"id": pid, "status": "refused", "reasons": e.to_json()})
            _print_refusal(e, quiet)
            raise typer.Exit(int(ExitCode.REJECTED)) from None
    if out is not None:
        _common.write_new(out, signed.to_file_bytes())
    result = {
        "id": pid,
        "status": "cancelled",
        "recorded": [r.seq for r in outcome.records if r.kind == "cancellation"],
        "notes": outcome.notes,
        "cancellation": signed.record_body() | {"certificate": None},
        "out": None if out is None else str(out),
    }
    if json_output:
        _common.emit_json(result)
    if not quiet:
        from eprescrire import ids

        console = _out(json_output)
        console.print(f"[bold red]CANCELLED[/] {ids.grouped(pid)}")
        for note in outcome.notes:
            console.print(f"  {note}")
        if out is not None:
            console.print(f"  signed cancellation written to {out}")


def consent(
    identifier: str = typer.Argument(..., metavar="ID", help="Prescription identifier."),
    oppose: bool = typer.Option(
        False, "--oppose", help="The patient opposes sharing dispensing data with the prescriber."
    ),
    allow: bool = typer.Option(False, "--allow", help="The patient withdraws that opposition."),
    pharmacist: str | None = typer.Option(
        None, "--pharmacist", help="RPPS of the pharmacist recording it."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Record the patient's choice about sharing dispensing data with the prescriber."""
    from eprescrire import dispensing

    if oppose == allow:
        raise UsageError("say --oppose or --allow")
    pid = _parse_id(identifier)
    rpps = None if pharmacist is None else dispensing.check_rpps(pharmacist)
    when = _common.moment(at)
    with _open(ledger, create=False) as handle:
        outcome = dispensing.set_consent(handle, pid, oppose, when, rpps)
    result = {"id": pid, "share_opposition": oppose, "recorded": [r.seq for r in outcome.records]}
    if json_output:
        _common.emit_json(result)
    if not quiet:
        what = "opposes" if oppose else "no longer opposes"
        _out(json_output).print(
            f"Recorded: the patient {what} sharing dispensing data with the prescriber."
        )


# --------------------------------------------------------------------------------------------
# ledger verify | export | checkpoint | import


@ledger_app.command("verify")
def ledger_verify(
    ledger: str | None = _common.LEDGER_OPTION,
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A signed checkpoint: also detect truncation or an older copy."
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="With --checkpoint: require its signer to chain to this trust store."
    ),
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Recompute the hash chain and run SQLite's integrity check: exit 0 intact, 1 tampered
    (naming the first bad record)."""
    from eprescrire.errors import VerificationError
    from eprescrire.ledger import checkpoint as checkpoints

    saved = None
    if checkpoint is not None:
        try:
            saved = checkpoints.read(checkpoint.read_bytes())
        except OSError as e:
            raise InputError(f"{checkpoint}: {e.strerror}") from e
        except VerificationError as e:
            raise InputError(f"{checkpoint}: {e}") from e
        if trust is not None:
            store = _common.open_trust(trust)
            try:
                store.validate(saved.certificate, [], saved.certificate.not_valid_before_utc)
            except VerificationError as e:
                raise InputError(f"{checkpoint}: signer not trusted: {e}") from e
    with _open(ledger, create=False) as handle:
        report = handle.verify()
        behind = None if saved is None or not report.ok else checkpoints.compare(handle, saved)
        location = handle.location
    result = report.to_json() | {"ledger": location}
    if saved is not None:
        result["checkpoint"] = saved.to_json() | {
            "ok": report.ok and behind is None,
            "problem": behind,
        }
    ok = report.ok and behind is None
    if json_output:
        _common.emit_json(result)
    if not quiet or not ok:
        out = _out(json_output)
        if ok:
            extra = f"; matches the checkpoint of {saved.at} (record {saved.seq})" if saved else ""
            out.print(
                f"[bold green]INTACT[/] {report.records} record(s), chain and integrity check ok{extra}"
            )
        else:
            out.print("[bold red]TAMPERED[/]")
            if report.problem:
                out.print(f"  first bad record: {report.first_bad}: {report.problem}")
            if report.integrity != ["ok"]:
                out.print(f"  integrity check: {'; '.join(report.integrity[:5])}")
            if behind:
                out.print(f"  checkpoint: {behind}")
    raise typer.Exit(int(ExitCode.OK if ok else ExitCode.REJECTED))


@ledger_app.command("export")
def ledger_export(
    ledger: str | None = _common.LEDGER_OPTION,
    format_: str = typer.Option(
        "jsonl", "--format", help="jsonl (one JSON object per record) or csv."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
    after: int = typer.Option(
        0, "--after", min=0, max=2**62, help="Only records with a sequence number above this."
    ),
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Export every record (with its hashes) as JSON lines or CSV."""
    import csv
    import json

    if format_ not in ("jsonl", "csv"):
        raise UsageError("--format must be jsonl or csv")
    stream: Any
    if out is None:
        stream = sys.stdout
    else:
        try:
            stream = open(out, "x", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        except FileExistsError as e:
            raise UsageError(f"{out} already exists; refusing to overwrite it") from e
        except OSError as e:
            raise InputError(f"cannot write {out}: {e.strerror}") from e
    try:
        with _open(ledger, create=False) as handle:
            columns = ["seq", "kind", "prescription_id", "recorded_at", "body", "prev_hash", "hash"]
            writer = csv.writer(stream) if format_ == "csv" else None
            if writer is not None:
                writer.writerow(columns)
            for record in handle.records(after):
                item = record.to_json()
                if writer is not None:
                    item["body"] = json.dumps(
                        record.body, ensure_ascii=False, sort_keys=True, separators=(",", ":")
                    )
                    writer.writerow([item[c] for c in columns])
                else:
                    stream.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    finally:
        if out is not None:
            stream.close()


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    key: Path = typer.Option(
        ..., "--key", help="PKCS#12 file that signs the checkpoint (the pharmacy's)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the signed checkpoint; keep it away from the ledger."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    at: str | None = _common.AT_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    passphrase_file: Path | None = _common.PASSPHRASE_FILE_OPTION,
    insecure_key: bool = _common.INSECURE_KEY_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Write a signed checkpoint of the ledger's head (sequence number, hash, time)."""
    from eprescrire.ledger import checkpoint as checkpoints

    credentials = _common.load_credentials(key, passphrase_file, insecure_key)
    when = _common.moment(at)
    with _open(ledger, create=False) as handle:
        report = handle.verify()
        if not report.ok:
            _complain(
                f"refusing to checkpoint a damaged ledger: record {report.first_bad}: {report.problem}"
            )
            raise typer.Exit(int(ExitCode.REJECTED))
        data, saved = checkpoints.write(handle, credentials, when)
    _common.write_new(out, data)
    if json_output:
        _common.emit_json(saved.to_json() | {"out": str(out)})
    if not quiet:
        _out(json_output).print(f"Checkpoint of record {saved.seq} written to {out}")


def _complain(message: str) -> None:
    print(f"eprescrire: {message}", file=sys.stderr)


@ledger_app.command("import")
def ledger_import(
    files: list[Path] = typer.Argument(
        ..., help="Signed cancellation files (from `cancel --out`)."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Import signed cancellations made elsewhere: recorded only when signed by the
    prescription's own signer."""
    from eprescrire import cancellation, dispensing
    from eprescrire.errors import VerificationError

    if files and all(_is_sqlite_file(f) for f in files):
        _import_ledgers(files, ledger, json_output, quiet)
        return
    codes: set[ExitCode] = set()
    with _open(ledger, create=True) as handle:
        for file in files:
            result: dict[str, Any] = {"input": str(file)}
            try:
                signed = cancellation.load_file(file.read_bytes())
                outcome = dispensing.record_cancellation(handle, signed)
                result.update(
                    status="imported",
                    id=signed.prescription_id,
                    notes=outcome.notes,
                    recorded=[r.seq for r in outcome.records],
                )
            except OSError as e:
                result.update(
                    status="unreadable",
                    reasons=[{"code": "unreadable_input", "message": str(e.strerror)}],
                )
                codes.add(ExitCode.UNREADABLE)
            except VerificationError as e:
                assert e.reason is not None
                result.update(
                    status="unreadable" if e.exit_code == ExitCode.UNREADABLE else "rejected",
                    reasons=[{"code": e.reason.value, "message": str(e)}],
                )
                codes.add(e.exit_code)
            except dispensing.Refused as e:
                result.update(status="refused", reasons=e.to_json())
                codes.add(ExitCode.REJECTED)
            if json_output:
                _common.emit_json(result)
            if not quiet:
                out = _out(json_output)
                colour = "green" if result["status"] == "imported" else "red"
                out.print(f"[bold {colour}]{result['status'].upper()}[/] {file}")
                for reason in result.get("reasons", []):
                    out.print(f"  ✗ {reason['code']}: {reason['message']}")
                for note in result.get("notes", []):
                    out.print(f"  {note}")
    # SPEC §3: 1 if any was rejected, else 3 if any was unreadable, else 0.
    worst = next((c for c in (ExitCode.REJECTED, ExitCode.UNREADABLE) if c in codes), ExitCode.OK)
    raise typer.Exit(int(worst))


# --------------------------------------------------------------------------------------------
# The shared ledger (PostgreSQL): init, add-site, importing a pharmacy's SQLite ledger


def _shared_url(location: str | None) -> str:
    from eprescrire import config

    url = config.ledger_location(location)
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("--ledger: a shared ledger's postgresql:// URL is needed here")
    return url


@ledger_app.command("init")
def ledger_init(
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Create or upgrade a shared ledger's schema, group roles and grants (as its administrator)."""
    from eprescrire.ledger import postgres

    url = _shared_url(ledger)
    before, after, ledger_id = postgres.initialise(url)
    result = {
        "ledger": postgres.redact(url),
        "id": ledger_id,
        "schema_before": before,
        "schema": after,
    }
    if json_output:
        _common.emit_json(result)
    if not quiet:
        what = "already at" if before == after else f"upgraded from {before} to"
        _out(json_output).print(f"Shared ledger {ledger_id}: schema {what} version {after}")


@ledger_app.command("add-site")
def ledger_add_site(
    certificate: Path = typer.Argument(
        ..., help="The site's (or person's) certificate, PEM or DER; its common name is the role."
    ),
    kind: str = typer.Option(..., "--kind", help="pharmacy, prescriber or auditor."),
    finess: str | None = typer.Option(None, "--finess", help="The pharmacy's FINESS number."),
    rpps: str | None = typer.Option(
        None,
        "--rpps",
        help="The person's RPPS (a pharmacist's; a prescriber's is read from the certificate).",
    ),
    role: str | None = typer.Option(
        None, "--role", help="Role name when not the certificate's common name (SCRAM login only)."
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="A file holding the role's password (SCRAM login)."
    ),
    ledger: str | None = _common.LEDGER_OPTION,
    json_output: bool = _common.JSON_OPTION,
    quiet: bool = _common.QUIET_OPTION,
    verbose: bool = _common.VERBOSE_OPTION,
) -> None:
    """Add a site to a shared ledger: its login role (client-certificate authentication) in the
    group of its kind, and its identity, which the database checks on every record it writes."""
    from cryptography import x509

    from eprescrire import dispensing
    from eprescrire.ledger import postgres

    url = _shared_url(ledger)
    if kind not in ("pharmacy", "prescriber", "auditor"):
        raise UsageError("--kind must be pharmacy, prescriber or auditor")
    if finess is not None:
        finess = dispensing.check_finess(finess)
    if rpps is not None:
        rpps = dispensing.check_rpps(rpps)
    try:
        data = certificate.read_bytes()
    except OSError as e:
        raise InputError(f"{certificate}: {e.strerror}") from e
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as e:
        raise InputError(f"{certificate}: not an X.509 certificate") from e
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{password_file}: cannot read the password") from e
        if not password:
            raise InputError(f"{password_file}: the password is empty")
    try:
        role = postgres.add_site(
            url, cert, kind, finess=finess, rpps=rpps, role=role, password=password
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    if json_output:
        _common.emit_json({"role": role, "kind": kind, "finess": finess, "rpps": rpps})
    if not quiet:
        _out(json_output).print(f"Site {role} added ({kind})")


def _is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _import_ledgers(files: list[Path], ledger: str | None, json_output: bool, quiet: bool) -> None:
    """Move pharmacies' SQLite ledgers into the shared ledger, keeping them verifiable."""
    from eprescrire.ledger import open_ledger, postgres

    url = _shared_url(ledger)
    with open_ledger(url, create=False) as target:
        assert isinstance(target, postgres.PostgresLedger)
        for file in files:
            with open_ledger(str(file), create=False) as source:
                appended, prescriptions = postgres.import_sqlite(source, target)
                result = {
                    "input": str(file),
                    "status": "imported",
                    "source_ledger": source.ledger_id,
                    "records": appended,
                    "prescriptions": prescriptions,
                }
            if json_output:
                _common.emit_json(result)
            if not quiet:
                _out(json_output).print(
                    f"[bold green]IMPORTED[/] {file}: {appended} record(s), {prescriptions} prescription(s)"
                )
