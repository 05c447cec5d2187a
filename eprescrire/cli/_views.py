"""How dispensing results and states are shown to people, in French
(:mod:`eprescrire.wording`); the JSON is the results' own."""

from __future__ import annotations

from typing import Any

from eprescrire.cli._output import console, emit_json, escape

_COLOURS = {
    "dispensed": "green",
    "refused": "red",
    "rejected": "red",
    "unreadable": "yellow",
    "valid": "green",
}


def report_dispensing(result: dict[str, Any], json_output: bool, quiet: bool) -> None:
    if json_output:
        emit_json(result)
    if quiet:
        return
    from eprescrire import ids, wording

    out = console(stderr=json_output)
    colour, label = _COLOURS[result["status"]], wording.status(result["status"])
    ident = f" {ids.grouped(result['id'])}" if result.get("id") else ""
    out.print(f"[bold {colour}]{label}[/]{ident}  [dim]{escape(result['input'])}[/]")
    for reason in result["reasons"]:
        out.print(f"  [{colour}]✗ {escape(wording.reason(reason['code'], reason['message']))}[/]")
    for warning in result.get("warnings") or ():
        out.print(f"  [yellow]! {escape(wording.reason_detail(warning))}[/]")
    state = result.get("dispensing")
    labels = {item["line"]: item["label"] for item in state["lines"]} if state else {}
    units = {}
    if result.get("prescription"):
        units = {
            # A line that states units_per_box is counted in units (gélules, ampoules...).
            n: None if line.get("units_per_box") else line.get("unit")
            for n, line in enumerate(result["prescription"]["lines"], 1)
        }
    for item in result["dispensed"]:
        generic = f" (substitué par {escape(item['generic'])})" if item["substituted"] else ""
        kind = (
            "délivrance" if item["dispensing"] == 1 else f"renouvellement {item['dispensing'] - 1}"
        )
        handed = wording.quantity(item["quantity"], units.get(item["line"]))
        out.print(
            f"  ✓ ligne {item['line']} : {escape(handed)} — {escape(labels.get(item['line'], ''))}"
            f"{generic} — {kind}"
        )
    for item in result.get("skipped", []):
        out.print(
            f"  [yellow]– ligne {item['line']} non délivrée : "
            f"{escape(wording.reason(item['code'], item['message']))}[/]"
        )
    if state:
        show_lines(out, state)


def show_lines(out: Any, state: dict[str, Any]) -> None:
    from eprescrire import wording

    for item in state["lines"]:
        if "dispensed" not in item:
            continue
        out.print(f"    {wording.line_state(item)}  [dim]{escape(item['label'])}[/]")


def show_status(result: dict[str, Any], *, to_stderr: bool) -> None:
    from eprescrire import ids, wording

    out = console(stderr=to_stderr)
    flags = []
    if result["cancelled"]:
        flags.append(
            f"[red]{wording.status('cancelled')}[/] le {wording.date(result['cancelled']['at'])} : "
            f"{escape(str(result['cancelled']['reason']))}"
        )
    if result["fully_dispensed"]:
        flags.append(f"[green]{wording.status('fully_dispensed')}[/]")
    out.print("  ".join([f"[bold]{ids.grouped(result['id'])}[/]", *flags]))
    for warning in result.get("warnings") or []:
        out.print(f"  [yellow]! {escape(wording.reason_detail(warning))}[/]")
    if "withheld" in result:
        for item in result["lines"]:
            out.print(
                f"    ligne {item['line']} : prescrit {item['prescribed']}  [dim]{escape(item['label'])}[/]"
            )
        out.print(f"  [yellow]{wording.WITHHELD}[/]")
        show_consents(out, result)
        return
    show_lines(out, result)
    for item in result["lines"]:
        for event in item["events"]:
            out.print(f"      {escape(wording.event(event))}")
    if result["share_opposition"]:
        out.print(f"  [dim]{wording.OPPOSITION}[/]")
    show_consents(out, result)


def show_consents(out: Any, result: dict[str, Any]) -> None:
    """Every change of the patient's choice, who recorded it and when."""
    from eprescrire import wording

    for item in result.get("consents") or []:
        out.print(f"  {escape(wording.consent_change(item))}")


def print_refusal(error: Any, quiet: bool) -> None:
    if not quiet:
        from eprescrire import wording

        console().print(
            f"[bold red]{wording.status('refused')}[/] "
            f"✗ {escape(wording.reason(error.code.value, error.message))}"
        )
