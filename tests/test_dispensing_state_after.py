"""The state a dispensing returns is folded on from the state its rules saw, over the records it
wrote: the same state as folding the whole history again, whatever the history holds (other
signers' records under the identifier, dispensings of several lines and rounds, consent,
cancellations)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from eprescrire import dispensing as d
from eprescrire.dispensing.state import state_after
from eprescrire.ledger import History, Record, open_ledger
from tests.test_ledger_stateful import ISSUED, RPPS, _document


def _history(tmp_path: Path) -> tuple[d.Presented, History]:
    document = _document()
    ledger = open_ledger(str(tmp_path / "ledger.sqlite"))
    at = ISSUED
    for days, line, quantity in [
        (1, 3, 1),
        (1, 1, 1),
        (0, 1, 1),
        (0, 2, None),
        (2, 4, 1),
        (28, 1, 2),
    ]:
        at += dt.timedelta(days=days)
        d.dispense(ledger, document, d.Request(RPPS, line=line, quantity=quantity), at)
    d.set_consent(ledger, document.prescription.id, True, at, RPPS)
    d.dispense(ledger, document, d.Request(RPPS, line=4, quantity=1), at)
    history = ledger.history(document.prescription.id)
    ledger.close()
    return document, history


def test_state_after_is_the_whole_fold_at_every_split(tmp_path: Path) -> None:
    document, history = _history(tmp_path)
    records = history.records
    first = records[0]
    foreign = dataclasses.replace(first, seq=999, body=first.body | {"kid": "another-key"})
    other_dispensing = dataclasses.replace(
        records[1], seq=998, body=records[1].body | {"lane": "another-key", "quantity": 9}
    )
    untagged = dataclasses.replace(records[1], seq=997, body=dict(records[1].body))
    del untagged.body["lane"]
    cancellation = Record(
        996, "cancellation", history.prescription_id, records[-1].recorded_at,
        {"kid": document.kid, "at": "2026-04-01T09:00:00Z", "reason": "Traitement arrêté"},
        records[-1].hash, "0" * 64,
    )  # fmt: skip
    variants = [
        records,
        (*records, cancellation),
        (*records[:3], foreign, *records[3:]),  # a second signer: the lane is filtered
        (foreign, *records),  # the other signer first: untagged dispensings are theirs
        (*records[:2], other_dispensing, untagged, *records[2:]),
    ]
    for variant in variants:
        whole = d.state_of(
            document.prescription, document.kid, History(history.prescription_id, variant)
        )
        assert sum(ls.dispensed for ls in whole.lines) > 0
        for split in range(len(variant) + 1):
            before = History(history.prescription_id, variant[:split])
            state = d.state_of(document.prescription, document.kid, before)
            assert state_after(state, before, variant[split:]) == whole, (variant, split)


def test_a_dispensing_returns_the_state_of_the_ledger_after_it(tmp_path: Path) -> None:
    document, _ = _history(tmp_path)
    ledger = open_ledger(str(tmp_path / "ledger.sqlite"))
    outcome = d.dispense(ledger, document, d.Request(RPPS, line=2), ISSUED + dt.timedelta(days=35))
    assert outcome.records
    assert outcome.state == d.state_of(
        document.prescription, document.kid, ledger.history(document.prescription.id)
    )
    ledger.close()
