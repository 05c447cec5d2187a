"""``keys prescriber --key pkcs11:…``: prescriber credentials whose key stays on a token."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from eprescrire.cli import _common
from eprescrire.errors import KeyFileError, UsageError


def prescriber_on_token(
    uri: str,
    *,
    pin_file: Path | None,
    out: Path,
    issuer: Any,
    name: str,
    rpps: str,
    specialty: str,
    not_before: dt.datetime,
    days: int,
    trust: Path | None,
    quiet: bool,
) -> None:
    """Certify the token's key pair named by ``uri`` (created as a non-extractable P-256 key
    when absent), write the certificate to ``out`` and onto the token beside the key."""
    from eprescrire import keys, tokens

    if not tokens.is_uri(uri):
        raise UsageError("--key must be a pkcs11: URI (a PKCS#12 key is made with --out FILE.p12)")
    if out.suffix != ".pem":
        raise UsageError("with --key pkcs11:…, --out is the certificate file to create (.pem)")
    if out.exists():
        raise KeyFileError(f"{out} already exists; refusing to overwrite it")
    provisioned = tokens.provision(uri, pin_file)
    certificate = keys.certify_prescriber(
        issuer,
        provisioned.public_key,
        name=name,
        rpps=rpps,
        specialty=specialty,
        not_before=not_before,
        days=days,
    )
    keys.write_exclusive(out, keys.pem(certificate), 0o644)
    tokens.store_certificate(provisioned, certificate)
    if trust is not None:
        from eprescrire.trust import TrustStore

        TrustStore.open(trust).add_certificate(certificate, now=dt.datetime.now(dt.UTC))
    if not quiet:
        kind = "RSA" if provisioned.key.key_type.name == "RSA" else "P-256"
        made = "created on the token" if provisioned.created else "already on the token"
        _common.console().print(
            f"prescriber [bold]{_common.escape(name)}[/] RPPS {rpps} kid {keys.kid_of(certificate)} "
            f"serial {certificate.serial_number:x}: {kind} key {made}, certificate written to "
            f"the token and to {out}"
        )


def authority_on_token(
    uri: str,
    *,
    pin_file: Path | None,
    out: Path,
    name: str,
    organization: str | None,
    not_before: dt.datetime,
    days: int,
    crl_days: int,
    quiet: bool,
) -> None:
    """A certification authority whose P-256 key stays on a token: the token signs the
    self-signed certificate (written to PREFIX.pem and onto the token) and the first CRL."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from eprescrire import keys, tokens

    if not tokens.is_uri(uri):
        raise UsageError("--key must be a pkcs11: URI")
    paths = [out.with_name(out.name + suffix) for suffix in (".pem", ".crl.pem")]
    for path in paths:
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    provisioned = tokens.provision(uri, pin_file)
    if not isinstance(provisioned.public_key, ec.EllipticCurvePublicKey):
        raise KeyFileError("an authority's key on a token must be EC P-256, not RSA")
    signer = tokens.TokenSigner(session=provisioned.session, key=provisioned.key, algorithm="ES256")
    credentials = keys.authority_for(
        signer, provisioned.public_key, name, organization, not_before, days
    )
    crl = keys.new_crl(
        credentials,
        now=max(not_before, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)),
        days=crl_days,
    )
    keys.write_exclusive(paths[0], keys.pem(credentials.certificate), 0o644)
    keys.write_exclusive(paths[1], crl.public_bytes(serialization.Encoding.PEM), 0o644)
    tokens.store_certificate(provisioned, credentials.certificate)
    if not quiet:
        made = "created on the token" if provisioned.created else "already on the token"
        _common.console().print(
            f"authority [bold]{_common.escape(name)}[/] (fingerprint "
            f"{keys.fingerprint(credentials.certificate)[:8].hex()}): P-256 key {made}; "
            f"{paths[0]} (also on the token), {paths[1]}"
        )
