"""A chain the trust store accepted is accepted again without its checks only while none of
them could answer otherwise: the same trust material, certificates valid at the signing time,
CRLs within their grace at the verification time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from eprescrire import signing
from eprescrire.errors import Reason, VerificationError
from eprescrire.trust import TrustStore


def _passed_once(store: TrustStore, document: signing.SignedDocument) -> tuple[Any, Any]:
    certificate = document.certificates[0]
    now = dt.datetime.now(dt.UTC)
    chain = store.validate(certificate, [], now, now=now)
    return certificate, chain


def test_a_chain_passed_before_is_not_checked_again(
    demo_trust: TrustStore, issue_document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, chain = _passed_once(demo_trust, issue_document())

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("checked again")

    monkeypatch.setattr(demo_trust, "_build_chain", refuse)
    monkeypatch.setattr(demo_trust, "crl_for", refuse)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert demo_trust.validate(certificate, [], later, now=later) == chain
    with pytest.raises(AssertionError):  # another profile: its own checks
        demo_trust.validate(certificate, [], later, now=later, profile="pharmacy")


def test_a_crl_past_its_grace_is_refused_after_a_pass(
    demo_trust: TrustStore, issue_document: Any
) -> None:
    certificate, _ = _passed_once(demo_trust, issue_document())
    crl = demo_trust.crl_for(demo_trust.authorities[0])
    assert crl is not None and crl.next_update_utc is not None
    beyond = crl.next_update_utc + demo_trust.crl_grace + dt.timedelta(seconds=1)
    at = min(beyond, certificate.not_valid_after_utc - dt.timedelta(days=1))
    with pytest.raises(VerificationError) as refused:
        demo_trust.validate(certificate, [], at, now=beyond)
    assert refused.value.reason is Reason.REVOCATION_UNKNOWN
    # Within the grace it still passes; a shorter grace set during the session is applied.
    within = crl.next_update_utc + dt.timedelta(seconds=1)
    assert demo_trust.validate(certificate, [], at, now=within)
    demo_trust.crl_grace = dt.timedelta(0)
    with pytest.raises(VerificationError) as refused:
        demo_trust.validate(certificate, [], at, now=within)
    assert refused.value.reason is Reason.REVOCATION_UNKNOWN


def test_a_crl_list_changed_during_a_session_is_read_again(
    demo_trust: TrustStore, issue_document: Any
) -> None:
    certificate, _ = _passed_once(demo_trust, issue_document())
    now = dt.datetime.now(dt.UTC)
    demo_trust.crls = []
    with pytest.raises(VerificationError) as refused:
        demo_trust.validate(certificate, [], now, now=now)
    assert refused.value.reason is Reason.REVOCATION_UNKNOWN
