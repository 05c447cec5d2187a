"""A write's clock is the real one: ``--at`` never moves it (dispense, cancel, consent, the
``at`` column of ``dispense --batch``); an earlier hand-over is recorded only with
``--handed-over``, bounded, with both times, and it never gains anything over the real clock."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import KEYS, LEDGER_BACKENDS
from eprescrire import dispensing as d
from eprescrire import model, signing
from eprescrire.dispensing.records import DispensingBody
from eprescrire.errors import UsageError
from eprescrire.keys import kid_of

PHARMACIST = "10003456786"
TRUST = KEYS / "demo-trust"


def _issue(run_cli: Any, key_file: Path, out: Path, issued: dt.date | None = None) -> str:
    args = ["issue", KEYS.parent / "examples" / "reference.toml", "--key", key_file]
    if issued is not None:
        args += ["--at", issued.isoformat()]
    result = run_cli(*args, "--out", out, "-q")
    assert result.code == 0, result
    return str(json.loads(out.read_text())["id"])


def _dispense(run_cli: Any, rx: Path, ledger: Path, *args: Any) -> Any:
    return run_cli(
        "dispense", rx, "--trust", TRUST, "--ledger", ledger, "--pharmacist", PHARMACIST,
        "--json", "-q", *args,
    )  # fmt: skip


def _records(ledger: Path) -> list[dict[str, Any]]:
    from eprescrire.ledger import open_ledger

    if not ledger.exists():
        return []
    with open_ledger(str(ledger), create=False) as book:
        return [{"kind": r.kind, **r.body} for r in book.records()]


def test_dispense_at_on_an_expired_prescription_is_refused_and_writes_nothing(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    # Issued four months ago: its first dispensing was due within three months.
    issued = dt.date.today() - dt.timedelta(days=122)
    rx = tmp_path / "old.json"
    _issue(run_cli, key_file, rx, issued)
    ledger = tmp_path / "ledger.sqlite3"
    back = (issued + dt.timedelta(days=30)).isoformat()
    moved = _dispense(run_cli, rx, ledger, "--all", "--at", back)
    assert moved.code == 2, moved
    assert "--at never moves the clock" in moved.stderr and "--handed-over" in moved.stderr
    assert len(moved.stderr.strip().splitlines()) == 1
    assert _records(ledger) == []
    real = _dispense(run_cli, rx, ledger, "--all")
    assert real.code == 1 and json.loads(real.stdout)["reasons"][0]["code"] == "expired"
    assert [r["kind"] for r in _records(ledger)] == []


def test_three_line_one_dispensings_cannot_hand_over_ninety_days_at_once(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = tmp_path / "rx.json"
    _issue(run_cli, key_file, rx, dt.date.today() - dt.timedelta(days=1))
    ledger = tmp_path / "ledger.sqlite3"
    today = dt.date.today()
    codes = [
        _dispense(run_cli, rx, ledger, "--line", "1", "--at", (today + dt.timedelta(days=n)).isoformat()).code
        for n in (0, 28, 58)
    ]  # fmt: skip
    assert codes == [2, 2, 2]
    stated = [
        _dispense(
            run_cli, rx, ledger, "--line", "1", "--handed-over",
            (dt.datetime.now(dt.UTC) - dt.timedelta(hours=h)).isoformat(),
        )
        for h in (3, 2, 1)
    ]  # fmt: skip
    assert [s.code for s in stated] == [0, 1, 1], stated
    assert [r["line"] for r in _records(ledger) if r["kind"] == "dispensing"] == [1]


@pytest.mark.parametrize("command", ["cancel", "consent"])
def test_cancel_and_consent_refuse_at(
    command: str,
    tmp_path: Path,
    run_cli: Any,
    cli_env: dict[str, str],
    key_file: Path,
    pharmacy_key_file: Path,
) -> None:
    rx = tmp_path / "rx.json"
    ident = _issue(run_cli, key_file, rx)
    ledger = tmp_path / "ledger.sqlite3"
    assert _dispense(run_cli, rx, ledger, "--line", "4", "--quantity", "1").code == 0
    args: list[Any] = (
        ["cancel", rx, "--key", key_file, "--reason", "erreur", "--trust", TRUST]
        if command == "cancel"
        else ["consent", ident, "--oppose", "--key", pharmacy_key_file, "--trust", TRUST]
    )
    result = run_cli(*args, "--ledger", ledger, "--at", "2026-01-01")
    assert result.code == 2, result
    assert "--at never moves the clock of a write" in result.stderr
    assert [r["kind"] for r in _records(ledger)] == ["prescription", "dispensing"]


def test_batch_at_column_is_refused_per_row_and_handed_over_is_kept(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = tmp_path / "rx.json"
    _issue(run_cli, key_file, rx, dt.date.today() - dt.timedelta(days=1))
    ledger = tmp_path / "ledger.sqlite3"
    stated = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)
    day = tmp_path / "day.csv"
    day.write_text(
        "input,line,quantity,at,handed_over\n"
        f"rx.json,4,1,{(dt.date.today() + dt.timedelta(days=60)).isoformat()},\n"
        f"rx.json,4,1,,{stated.isoformat()}\n",
        "utf-8",
    )
    result = run_cli(
        "dispense", "--batch", day, "--trust", TRUST, "--ledger", ledger,
        "--pharmacist", PHARMACIST, "--json", "-q",
    )  # fmt: skip
    rows = result.json_lines()
    assert [r["status"] for r in rows] == ["unreadable", "dispensed"], rows
    assert "handed_over" in rows[0]["reasons"][0]["message"]
    (dispensing,) = [r for r in _records(ledger) if r["kind"] == "dispensing"]
    assert dt.datetime.fromisoformat(dispensing["handed_over"]) == stated
    assert dt.datetime.fromisoformat(dispensing["at"]) > stated  # recorded at the real time


def test_handed_over_is_bounded_and_shown_with_both_times(
    tmp_path: Path, run_cli: Any, cli_env: dict[str, str], key_file: Path
) -> None:
    rx = tmp_path / "rx.json"
    ident = _issue(run_cli, key_file, rx, dt.date.today() - dt.timedelta(days=20))
    ledger = tmp_path / "ledger.sqlite3"
    now = dt.datetime.now(dt.UTC)
    for offset, code, text in [
        (dt.timedelta(days=8), 2, "more than 7 days back"),
        (-dt.timedelta(hours=2), 2, "in the future"),
    ]:
        result = _dispense(
            run_cli, rx, ledger, "--line", "4", "--handed-over", (now - offset).isoformat()
        )
        assert result.code == code and text in result.stderr, result
    assert _dispense(run_cli, rx, ledger, "--line", "4", "--handed-over", "2026-01-01").code == 2
    stated = (now - dt.timedelta(days=2)).replace(microsecond=0)
    ok = _dispense(
        run_cli, rx, ledger, "--line", "4", "--quantity", "1", "--handed-over", stated.isoformat()
    )
    assert ok.code == 0, ok
    # Before the prescription's latest record: refused.
    before = _dispense(
        run_cli,
        rx,
        ledger,
        "--line",
        "3",
        "--handed-over",
        (now - dt.timedelta(days=3)).isoformat(),
    )
    assert before.code == 1
    assert json.loads(before.stdout)["reasons"][0]["code"] == "conflicting_record"
    status = run_cli("status", ident, "--ledger", ledger, "--json")
    (event,) = json.loads(status.stdout)["lines"][3]["events"]
    assert dt.datetime.fromisoformat(event["handed_over"]) == stated
    assert dt.datetime.fromisoformat(event["at"]) >= now - dt.timedelta(seconds=5)
    human = run_cli("status", ident, "--ledger", ledger)
    assert "remis le" in human.stdout + human.stderr
    exported = run_cli("ledger", "export", "--ledger", ledger)
    lines = [json.loads(x) for x in exported.stdout.splitlines()]
    assert any(x.get("body", {}).get("handed_over") for x in lines), lines


# --------------------------------------------------------------------------------------------
# The property: whatever hand-over times are stated, what is recorded is what the real clock
# decides, and the rules' clock never moves.

ISSUED = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
LINES = [
    {"label": "METFORMINE 1000 mg", "posology": "1 matin et soir", "duration_days": 30,
     "quantity": 1, "renewals": 2},
    {"label": "SULFATE DE MORPHINE 30 mg", "posology": "1 matin et soir", "duration_days": 28,
     "quantity": 4, "narcotic": True, "days_per_dispensing": 7},
    {"label": "LEVOTHYROX 100 µg", "posology": "1 le matin", "duration_days": 90, "quantity": 3},
]  # fmt: skip


def _presented() -> d.Presented:
    from eprescrire import keys

    credentials = keys.load_pkcs12(KEYS / "demo-prescriber.p12", b"demo-only", insecure=True)
    data = {
        "prescriber": {
            "name": "Dr Claire Martin",
            "rpps": PHARMACIST,
            "specialty": "Médecine générale",
            "facility": {"name": "Cabinet", "address": "12 rue de la Roquette, 75011 Paris"},
        },
        "patient": {"family_name": "Durand", "given_name": "Louise", "birth_date": "1956-03-14"},
        "lines": LINES,
    }
    document = signing.sign(model.from_input(data, now=ISSUED), credentials)
    return d.Presented(
        document.prescription,
        document.token,
        kid_of(credentials.certificate),
        credentials.certificate,
    )


PRESENTED = _presented()

step = st.tuples(
    st.integers(0, 20 * 24),  # hours the real clock advances first
    st.one_of(st.none(), st.integers(1, len(LINES))),  # line (None: --all)
    st.one_of(st.none(), st.integers(1, 4)),  # quantity (with a line)
    st.one_of(st.none(), st.integers(-48, 9 * 24)),  # handed over this many hours back
)


def _bodies(records: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(r.kind, {k: v for k, v in r.body.items() if k != "handed_over"}) for r in records]


@pytest.mark.parametrize("backend", list(LEDGER_BACKENDS))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_stated_hand_over_times_never_move_the_rules_clock(
    backend: str, steps: list[tuple[int, int | None, int | None, int | None]]
) -> None:
    directory = Path(tempfile.mkdtemp())
    try:
        factory = LEDGER_BACKENDS[backend](directory)
        stated_ledger, real_ledger = factory("stated"), factory("real")
        pid = PRESENTED.prescription.id
        now = ISSUED
        try:
            for hours, line, quantity, back in steps:
                now += dt.timedelta(hours=hours)
                handed = None if back is None else now - dt.timedelta(hours=back)
                try:
                    request = d.Request(
                        PHARMACIST,
                        line=line,
                        quantity=quantity if line is not None else None,
                        handed_over=handed,
                    )
                    plain = d.Request(
                        PHARMACIST, line=line, quantity=request.quantity, handed_over=None
                    )
                except UsageError:
                    continue
                # What the real clock decides on the same state, without any stated time.
                state = d.state_of(
                    PRESENTED.prescription, PRESENTED.kid, stated_ledger.history(pid)
                )
                try:
                    expected = d.first_sight(stated_ledger.history(pid), PRESENTED) + d.plan(
                        state, plain, now
                    )
                except (d.Refused, UsageError):
                    expected = None
                before = len(stated_ledger.history(pid).records)
                try:
                    outcome = d.dispense(stated_ledger, PRESENTED, request, now)
                except (d.Refused, UsageError):
                    # A refusal writes nothing; without a stated time it is the real clock's.
                    assert len(stated_ledger.history(pid).records) == before
                    assert back is not None or expected is None
                    continue
                # Recorded: exactly what the real clock decides, at the real time.
                assert expected is not None
                # Dispensings carry their signer's lane (one identifier, several signers).
                from eprescrire.dispensing.lanes import tagged

                assert _bodies(outcome.records) == [
                    (n.kind, tagged(n.body, PRESENTED.kid) if n.kind == "dispensing" else n.body)
                    for n in expected
                ]
                for record in outcome.records:
                    if record.kind == "dispensing":
                        assert DispensingBody.from_json(record.body).at == now
                        assert record.body.get("handed_over") == (
                            None if handed is None else model.format_timestamp(handed)
                        )
                        assert handed is None or now - dt.timedelta(days=7) <= handed <= now
                # The same decision recorded without a stated time gives the same state.
                twin = d.dispense(real_ledger, PRESENTED, plain, now)
                assert _bodies(twin.records) == _bodies(outcome.records)
                seen = d.view(
                    d.state_of(PRESENTED.prescription, PRESENTED.kid, stated_ledger.history(pid)),
                    now,
                )
                real = d.view(
                    d.state_of(PRESENTED.prescription, PRESENTED.kid, real_ledger.history(pid)), now
                )
                for a, b in zip(seen["lines"], real["lines"], strict=True):
                    for event in a["events"]:
                        event.pop("handed_over", None)
                    for x in (a, b):
                        for event in x["events"]:
                            event.pop("seq"), event.pop("recorded_at")
                    assert a == b
        finally:
            stated_ledger.close()
            real_ledger.close()
            factory.cleanup()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
