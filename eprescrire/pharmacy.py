"""Pharmacy credentials: a certificate profile of their own, for what a pharmacy signs.

A pharmacy (FINESS) or a pharmacist (RPPS), or a pharmacist of a pharmacy (both), signs the
ledger's checkpoints and the patient's consent records. Their certificate, signed by an
authority, is told apart from a prescriber's by its extended key usage:

- ``PHARMACY_EKU`` (an OID of the ``2.25`` UUID arc, X.667, made for eprescrire): signs ledger
  checkpoints and consent records; a prescriber's certificate (documentSigning) never has it,
  and a pharmacy certificate has no documentSigning, so neither signs what the other does;
- ``clientAuth``: the same certificate logs in to a shared PostgreSQL ledger (``cert``
  authentication), its common name being the role name (``pharmacy_750001232``,
  ``pharmacist_10009876540``, or one chosen with ``--role``).

The subject is ``CN=<role>, O=<name>, C=FR``; the FINESS and RPPS are subject alternative names
``urn:finess:<FINESS>`` and ``urn:rpps:<RPPS>`` (no serialNumber, which is the prescriber's RPPS
in a prescriber certificate).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eprescrire.errors import UsageError
from eprescrire.keys import Credentials, certify_end_entity

#: eprescrire pharmacy signing (checkpoints, consent): 2.25 + uuid5(URL, "https://eprescrire/
#: pharmacy-ledger-signing").
PHARMACY_EKU = x509.ObjectIdentifier("2.25.222157479094852250715322605415563678760")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a PostgreSQL role name, as add-site takes it
_FINESS_URN = "urn:finess:"
_RPPS_URN = "urn:rpps:"


@dataclass(frozen=True)
class PharmacyIdentity:
    """Who a pharmacy certificate names."""

    role: str
    name: str
    finess: str | None
    rpps: str | None

    def describe(self) -> str:
        parts = [self.name]
        if self.finess:
            parts.append(f"FINESS {self.finess}")
        if self.rpps:
            parts.append(f"pharmacist RPPS {self.rpps}")
        return ", ".join(parts)


def default_role(finess: str | None, rpps: str | None) -> str:
    if finess:
        return f"pharmacy_{finess.lower()}"
    if rpps:
        return f"pharmacist_{rpps}"
    raise UsageError("a pharmacy certificate names a FINESS (--finess), an RPPS (--rpps), or both")


def certify_pharmacy(
    authority: Credentials,
    public_key: ec.EllipticCurvePublicKey,
    *,
    name: str,
    finess: str | None,
    rpps: str | None,
    role: str | None,
    not_before: dt.datetime,
    days: int,
) -> x509.Certificate:
    """A pharmacy certificate for ``public_key`` (P-256), signed by ``authority``. The caller
    checks FINESS and RPPS (:func:`eprescrire.ids.check_finess`, Luhn)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise UsageError("a pharmacy key must be an EC P-256 key")
    role = role or default_role(finess, rpps)
    if not ROLE_NAME.match(role):
        raise UsageError(
            f"--role {role!r} is not a role name (lower-case letters, digits and _, 63 at most)"
        )
    if not name.strip() or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise UsageError("--name must be a printable name")
    if finess is None and rpps is None:
        default_role(finess, rpps)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, role),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        ]
    )
    names: list[x509.GeneralName] = []
    if finess:
        names.append(x509.UniformResourceIdentifier(_FINESS_URN + finess))
    if rpps:
        names.append(x509.UniformResourceIdentifier(_RPPS_URN + rpps))
    return certify_end_entity(
        authority,
        public_key,
        subject,
        usages=[PHARMACY_EKU, ExtendedKeyUsageOID.CLIENT_AUTH],
        names=names,
        content_commitment=False,
        not_before=not_before,
        days=days,
    )


def new_pharmacy(
    authority: Credentials,
    *,
    name: str,
    finess: str | None,
    rpps: str | None,
    role: str | None = None,
    not_before: dt.datetime,
    days: int,
) -> Credentials:
    """A pharmacy's P-256 key and certificate signed by ``authority``."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = certify_pharmacy(
        authority,
        key.public_key(),
        name=name,
        finess=finess,
        rpps=rpps,
        role=role,
        not_before=not_before,
        days=days,
    )
    return Credentials(key=key, certificate=certificate, chain=(authority.certificate,))


def identity_of(certificate: x509.Certificate) -> PharmacyIdentity | None:
    """The pharmacy a certificate names, or None when it is not a pharmacy certificate (no
    pharmacy key usage, or neither FINESS nor RPPS). Whether an authority one trusts signed it
    is :meth:`eprescrire.trust.TrustStore.validate`'s question (``profile="pharmacy"``)."""
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        alternatives = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    if PHARMACY_EKU not in usages:
        return None
    finess = rpps = None
    for uri in alternatives.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(_FINESS_URN):
            finess = uri[len(_FINESS_URN) :]
        elif uri.startswith(_RPPS_URN):
            rpps = uri[len(_RPPS_URN) :]
    if finess is None and rpps is None:
        return None

    def attribute(oid: x509.ObjectIdentifier) -> str:
        values = certificate.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return PharmacyIdentity(
        attribute(NameOID.COMMON_NAME), attribute(NameOID.ORGANIZATION_NAME), finess, rpps
    )
