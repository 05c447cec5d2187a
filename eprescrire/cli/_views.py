"""How dispensing results and states are shown to people (the JSON is the results' own)."""

from __future__ import annotations

from typing import Any

from eprescrire.cli._output import console, emit_json, escape

_LABELS = {
    "dispensed": ("green", "DISPENSED"),
    "refused": ("red", "REFUSED"),
    "rejected": ("red", "REJECTED"),
    "unreadable": ("yellow", "UNREADABLE"),
    "valid": ("green", "VALID"),
}


def report_dispensing(result: dict[str, Any], json_output: bool, quiet: bool) -> None:
    if json_output:
        emit_json(result)
    if quiet:
        return
    from eprescrire import ids

    out = console(stderr=json_output)
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
        show_lines(out, state)


def show_lines(out: Any, state: dict[str, Any]) -> None:
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


def show_status(result: dict[str, Any], *, to_stderr: bool) -> None:
    from eprescrire import ids

    out = console(stderr=to_stderr)
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
    show_lines(out, result)
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


def print_refusal(error: Any, quiet: bool) -> None:
    if not quiet:
        console().print(f"[bold red]REFUSED[/] ✗ {error.code.value}: {error.message}")
