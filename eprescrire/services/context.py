"""What the use cases share: where the trust store, the ledger and the credentials come from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eprescrire import config, ids, rules
from eprescrire.errors import UsageError

if TYPE_CHECKING:  # loaded by the use cases that need them: `verify` waits for every import
    from eprescrire.keys import Credentials
    from eprescrire.ledger import Ledger
    from eprescrire.trust import TrustStore

#: QR decoding engines for images.
ENGINES = ("zxing", "zbar")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UsageError("--engine must be zxing or zbar")
    return engine


def moment(at: str | None) -> dt.datetime:
    """``at`` (ISO 8601) as an aware time, or now."""
    return config.parse_moment(at) if at else rules.now()


def open_trust(trust: Path | None) -> TrustStore:
    """The trust store: ``trust``, else EPRESCRIRE_TRUST, else the default one."""
    from eprescrire.trust import TrustStore

    return TrustStore.open(config.trust_dir(trust))


def open_ledger(location: str | None, *, create: bool) -> Ledger:
    """The ledger at ``location``, else EPRESCRIRE_LEDGER, else the default one."""
    from eprescrire.ledger import open_ledger as open_at

    return open_at(config.ledger_location(location), create=create)


def load_credentials(
    key: Path | str, passphrase_file: Path | None, insecure: bool, pin_file: Path | None = None
) -> Credentials:
    """Credentials from a PKCS#12 file (the passphrase from the file, the environment or a
    prompt), or a key on a PKCS#11 token named by a ``pkcs11:`` URI (the PIN from
    ``pin_file``, ``EPRESCRIRE_PIN`` or a prompt)."""
    from eprescrire import keys

    if str(key).startswith("pkcs11:"):
        from eprescrire import tokens

        credentials: Credentials = tokens.load_credentials(str(key), pin_file)
        return credentials
    key = Path(key)
    passphrase = config.read_passphrase(passphrase_file, prompt=f"Passphrase for {key.name}")
    return keys.load_pkcs12(key, passphrase, insecure=insecure)


def parse_id(text: str) -> str:
    """A prescription identifier as typed (case, spaces, dashes tolerated). UsageError if not."""
    try:
        return ids.parse(text)
    except ValueError as e:
        raise UsageError(f"{text!r} is not a prescription identifier: {e}") from e


def signer_certificate(verdict: Any, store: TrustStore, data: bytes | None) -> Any:
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
