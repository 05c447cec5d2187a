"""What a trust store remembers between codes (a counter session) never changes a verdict."""

from __future__ import annotations

import datetime as dt

import pytest

from eprescrire import keys, qr, signing, verifying
from eprescrire.errors import Reason, VerificationError
from eprescrire.trust import TrustStore


def _status(store: TrustStore, document: signing.SignedDocument, at: dt.datetime) -> list[str]:
    verdict = verifying.verify_text("t", qr.encode(document), store, at)
    return [r.code.value if hasattr(r.code, "value") else str(r.code) for r in verdict.reasons]


def test_a_crl_installed_during_a_session_is_used_at_once(
    demo_trust: TrustStore, demo_authority: keys.Credentials, issue_document
) -> None:
    document = issue_document()
    now = dt.datetime.now(dt.UTC)
    assert _status(demo_trust, document, now) == []
    assert _status(demo_trust, document, now) == []  # from what was remembered
    certificate = document.certificates[0]
    crl = demo_trust.crl_for(demo_trust.authorities[0])
    assert crl is not None
    demo_trust.add_crl(keys.revoke(demo_authority, crl, certificate.serial_number, now=now))
    assert _status(demo_trust, document, now) == ["certificate_revoked"]


def test_a_remembered_chain_is_not_used_outside_the_certificates_validity(
    demo_trust: TrustStore, issue_document
) -> None:
    document = issue_document()
    certificate = document.certificates[0]
    now = dt.datetime.now(dt.UTC)
    assert _status(demo_trust, document, now) == []
    chain = demo_trust.validate(certificate, [], now, now=now)
    late = certificate.not_valid_after_utc + dt.timedelta(days=1)
    early = certificate.not_valid_before_utc - dt.timedelta(days=1)
    for at in (late, early):
        with pytest.raises(VerificationError) as refused:
            demo_trust.validate(certificate, [], at, now=now)
        assert refused.value.reason is Reason.CERTIFICATE_EXPIRED
    assert demo_trust.validate(certificate, [], now, now=now) == chain


def test_an_authority_removed_during_a_session_no_longer_validates(
    demo_trust: TrustStore, issue_document
) -> None:
    document = issue_document()
    now = dt.datetime.now(dt.UTC)
    assert _status(demo_trust, document, now) == []
    demo_trust.authorities = []
    assert _status(demo_trust, document, now) == ["untrusted_chain"]
