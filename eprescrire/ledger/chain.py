"""The hash chain: each record's hash covers its content and the previous record's hash.

``hash = SHA-256(prev_hash || canonical([seq, kind, prescription_id, recorded_at, body]))`` where
``body`` is the exact canonical JSON text stored. The first record chains to a genesis hash
derived from the ledger's random identifier, so that records cannot be moved between ledgers.
Editing, deleting, swapping or inserting a record breaks the chain at that record; cutting the
tail off (or restoring an older copy) is only visible against a signed checkpoint, because a
shorter chain is still a valid chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eprescrire import canonical

GENESIS_LABEL = b"eprescrire-ledger/1\x00"
HASH_HEX_LENGTH = 64


def genesis(ledger_id: str) -> str:
    return hashlib.sha256(GENESIS_LABEL + ledger_id.encode("utf-8")).hexdigest()


def body_text(body: dict[str, Any]) -> str:
    """The stored form of a record body: canonical JSON."""
    return canonical.dumps(body).decode("utf-8")


def record_hash(
    prev_hash: str, seq: int, kind: str, prescription_id: str, recorded_at: str, body: str
) -> str:
    material = canonical.dumps([seq, kind, prescription_id, recorded_at, body])
    return hashlib.sha256(bytes.fromhex(prev_hash) + material).hexdigest()


@dataclass(frozen=True)
class Problem:
    seq: int
    message: str


def _is_hash(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != HASH_HEX_LENGTH:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value == value.lower()


def check(
    rows: Iterable[tuple[Any, ...]], ledger_id: str, kinds: frozenset[str]
) -> tuple[int, str | None, Problem | None]:
    """Walk ``(seq, kind, prescription_id, recorded_at, body, prev_hash, hash)`` rows in
    storage order. Returns (records seen, last good hash, first problem or None)."""
    expected_prev = genesis(ledger_id)
    expected_seq = 1
    count = 0
    last: str | None = None
    for row in rows:
        count += 1
        seq, kind, pid, recorded_at, body, prev_hash, stored = row
        where = seq if isinstance(seq, int) else expected_seq
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                return (
                    count,
                    last,
                    Problem(expected_seq, f"record {expected_seq} is missing (next is {seq})"),
                )
            return (
                count,
                last,
                Problem(where, f"record {seq} is out of sequence (expected {expected_seq})"),
            )
        if not all(isinstance(v, str) for v in (kind, pid, recorded_at, body)):
            return count, last, Problem(where, f"record {seq} has a field of the wrong type")
        if kind not in kinds:
            return count, last, Problem(where, f"record {seq} has an unknown kind")
        if prev_hash != expected_prev:
            return count, last, Problem(where, f"record {seq} does not chain to record {seq - 1}")
        if not _is_hash(stored):
            return count, last, Problem(where, f"record {seq} has no valid hash")
        if record_hash(prev_hash, seq, kind, pid, recorded_at, body) != stored:
            return count, last, Problem(where, f"record {seq} was altered (hash mismatch)")
        try:
            parsed = json.loads(body)
        except ValueError:
            return count, last, Problem(where, f"record {seq} body is not JSON")
        if not isinstance(parsed, dict) or body_text(parsed) != body:
            return count, last, Problem(where, f"record {seq} body is not canonical")
        expected_prev = stored
        expected_seq += 1
        last = stored
    return count, last, None
