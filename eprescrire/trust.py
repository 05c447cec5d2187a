"""The verifier's trust store: authorities, their CRLs, known signers, the pinned algorithm.

A trust store is a directory::

    trust.toml          algorithms = ["ES256"]  (optional; ES256 is the only one supported)
    authorities/*.pem   certification authorities (self-signed CA certificates)
    crls/*.pem          one CRL per authority, signed by it
    signers/*.pem       prescriber certificates, so that a QR code (which carries no
                        certificate) can be checked offline; named by kid

Verification never trusts anything else: not a key embedded in a token, not a certificate
whose chain does not end in ``authorities/``, not a kid used as a path.
"""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from eprescrire import jws
from eprescrire.errors import Reason, TrustStoreError, UsageError, VerificationError
from eprescrire.keys import DOCUMENT_SIGNING_EKU, common_name, fingerprint, kid_of, rpps_of

SUPPORTED_ALGORITHMS = frozenset({jws.ALGORITHM})
MAX_CHAIN_DEPTH = 2


def _require_signing_usage(_policy: object, _cert: object, usage: x509.KeyUsage) -> None:
    if not (usage.digital_signature or usage.content_commitment) or usage.key_cert_sign:
        raise ValueError("key usage does not allow signing documents")


def _require_document_signing(_policy: object, _cert: object, eku: x509.ExtendedKeyUsage) -> None:
    if DOCUMENT_SIGNING_EKU not in eku:
        raise ValueError("extended key usage lacks documentSigning")


def _require_end_entity(
    _policy: object, _cert: object, basic: x509.BasicConstraints | None
) -> None:
    if basic is not None and basic.ca:
        raise ValueError("a CA certificate cannot sign prescriptions")


def _signer_policy() -> verification.ExtensionPolicy:
    """What a prescriber's certificate must say: a document-signing certificate (critical
    KeyUsage with digitalSignature or nonRepudiation, ExtendedKeyUsage with documentSigning),
    not a CA. A TLS login or encryption certificate from the same authority is refused."""
    policy = verification.ExtensionPolicy.permit_all()
    return (
        policy.require_present(
            x509.KeyUsage, verification.Criticality.CRITICAL, _require_signing_usage
        )
        .require_present(
            x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _require_document_signing
        )
        .may_be_present(
            x509.BasicConstraints, verification.Criticality.AGNOSTIC, _require_end_entity
        )
    )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _load_cert(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TrustStoreError(f"cannot read {path}: {e.strerror}") from e
    try:
        if b"-----BEGIN" in data:
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
        _ = certificate.subject, certificate.issuer, list(certificate.extensions)
        _ = certificate.public_key()
        return certificate
    except Exception as e:  # any parser failure (InvalidVersion, DuplicateExtension, ...)
        raise TrustStoreError(f"{path} is not a valid X.509 certificate") from e


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TrustStoreError(f"cannot read {path}: {e.strerror}") from e
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as e:
        raise TrustStoreError(f"{path} is not a CRL") from e


def short_fingerprint(certificate: x509.Certificate) -> str:
    return fingerprint(certificate)[:8].hex()


@dataclass(frozen=True)
class Entry:
    """One line of ``trust list``."""

    kind: str  # authority | signer | crl
    name: str
    ident: str  # fingerprint (authority), kid (signer), authority fingerprint (crl)
    not_after: dt.datetime | None
    detail: str = ""


@dataclass
class TrustStore:
    path: Path
    authorities: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    signers: dict[str, x509.Certificate] = field(default_factory=dict)
    algorithms: frozenset[str] = SUPPORTED_ALGORITHMS

    # ---------------------------------------------------------------------------- loading

    @classmethod
    def open(cls, path: Path) -> TrustStore:
        """Load a trust store directory. On failure, raises :class:`TrustStoreError`."""
        if not path.is_dir():
            raise TrustStoreError(
                f"trust store not found: {path} (use --trust DIR or EPRESCRIRE_TRUST)"
            )
        store = cls(path=path)
        config = path / "trust.toml"
        if config.exists():
            try:
                settings = tomllib.loads(config.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                raise TrustStoreError(f"{config} is not valid TOML: {e}") from e
            algorithms = settings.get("algorithms", [jws.ALGORITHM])
            if (
                not isinstance(algorithms, list)
                or not algorithms
                or not set(algorithms) <= SUPPORTED_ALGORITHMS
            ):
                raise TrustStoreError(
                    f"{config}: algorithms must be a non-empty subset of "
                    f"{sorted(SUPPORTED_ALGORITHMS)}"
                )
            store.algorithms = frozenset(algorithms)
        for file in sorted((path / "authorities").glob("*.pem")):
            certificate = _load_cert(file)
            if not _is_ca(certificate):
                raise TrustStoreError(f"{file} is not a CA certificate")
            store.authorities.append(certificate)
        for file in sorted((path / "crls").glob("*.pem")):
            store.crls.append(_load_crl(file))
        for file in sorted((path / "signers").glob("*.pem")):
            certificate = _load_cert(file)
            store.signers[kid_of(certificate)] = certificate
        return store

    @classmethod
    def create(cls, path: Path) -> TrustStore:
        for sub in ("authorities", "crls", "signers"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls.open(path)

    # ---------------------------------------------------------------------------- lookups

    def find_signer(
        self, kid: str, presented: Iterable[x509.Certificate] = ()
    ) -> x509.Certificate | None:
        """The certificate whose kid is ``kid``: one presented with the document, else a known
        signer. The kid only selects a certificate; it proves nothing until the chain and the
        signature are checked."""
        for certificate in presented:
            if kid_of(certificate) == kid:
                return certificate
        return self.signers.get(kid)

    def crl_for(self, authority: x509.Certificate) -> x509.CertificateRevocationList | None:
        """The newest CRL signed by ``authority``."""
        best: x509.CertificateRevocationList | None = None
        for crl in self.crls:
            if crl.issuer != authority.subject:
                continue
            if not crl.is_signature_valid(authority.public_key()):  # type: ignore[arg-type]
                continue
            if best is None or crl.last_update_utc > best.last_update_utc:
                best = crl
        return best

    # ---------------------------------------------------------------------------- checks

    def validate(
        self,
        certificate: x509.Certificate,
        intermediates: list[x509.Certificate],
        at: dt.datetime,
    ) -> list[x509.Certificate]:
        """Validate the signer's chain as of ``at`` (the signing time) and its revocation;
        return the chain, signer first, trust anchor last.

        On failure, raises :class:`VerificationError` with ``certificate_expired``,
        ``untrusted_chain`` or ``certificate_revoked``.
        """
        if _is_ca(certificate):
            raise VerificationError(
                Reason.UNTRUSTED_CHAIN, "signer certificate is a CA, not a prescriber"
            )
        if not self.authorities:
            raise VerificationError(Reason.UNTRUSTED_CHAIN, "the trust store has no authority")
        try:
            chain = self._build_chain(certificate, intermediates, at)
        except verification.VerificationError as e:
            # Trusted but used outside its validity, or not trusted at all? Ask again at a
            # moment the signer certificate was valid: only a trusted chain passes then.
            probe = min(max(at, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
            try:
                chain = self._build_chain(certificate, intermediates, probe)
            except verification.VerificationError:
                raise VerificationError(
                    Reason.UNTRUSTED_CHAIN,
                    "signer certificate does not chain to a trusted authority",
                ) from e
            for cert in chain:
                if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                    which = "signer" if cert is chain[0] else "issuer"
                    raise VerificationError(
                        Reason.CERTIFICATE_EXPIRED,
                        f"{which} certificate was not valid at signing time "
                        f"(valid {cert.not_valid_before_utc:%Y-%m-%d} "
                        f"to {cert.not_valid_after_utc:%Y-%m-%d})",
                    ) from e
            raise VerificationError(
                Reason.UNTRUSTED_CHAIN, "signer certificate does not chain to a trusted authority"
            ) from e
        for child, parent in itertools.pairwise(chain):
            crl = self.crl_for(parent)
            if crl is None:
                raise VerificationError(
                    Reason.UNTRUSTED_CHAIN,
                    f"no CRL from authority {common_name(parent)!r}: revocation cannot be checked",
                )
            if crl.get_revoked_certificate_by_serial_number(child.serial_number) is not None:
                raise VerificationError(
                    Reason.CERTIFICATE_REVOKED,
                    f"certificate {child.serial_number:x} was revoked by {common_name(parent)!r}",
                )
        return list(chain)

    def _build_chain(
        self, certificate: x509.Certificate, intermediates: list[x509.Certificate], at: dt.datetime
    ) -> list[x509.Certificate]:
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(self.authorities))
            .time(at)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=_signer_policy(),
            )
        )
        return list(builder.build_client_verifier().verify(certificate, intermediates).chain)

    def stale_crls(self, chain: list[x509.Certificate], now: dt.datetime) -> list[str]:
        """Warnings for the CRLs of ``chain`` whose next update is past: revocations made since
        then are unknown here (offline). The verdict still stands on the CRL we have."""
        warnings = []
        for authority in chain[1:]:
            crl = self.crl_for(authority)
            if crl is not None and crl.next_update_utc is not None and crl.next_update_utc < now:
                warnings.append(
                    f"the CRL of {common_name(authority)!r} was due for renewal on "
                    f"{crl.next_update_utc:%Y-%m-%d}: install a newer one (trust crl)"
                )
        return warnings

    # ---------------------------------------------------------------------------- edits

    def add_certificate(self, certificate: x509.Certificate, *, now: dt.datetime) -> Entry:
        """Add an authority (CA) or a prescriber certificate (checked against the authorities)."""
        if _is_ca(certificate):
            if certificate.issuer != certificate.subject:
                raise UsageError("only self-signed authorities can be trust anchors")
            target = self.path / "authorities" / f"{short_fingerprint(certificate)}.pem"
            self.authorities.append(certificate)
            entry = Entry(
                "authority",
                common_name(certificate),
                short_fingerprint(certificate),
                certificate.not_valid_after_utc,
            )
        else:
            if rpps_of(certificate) is None:
                raise UsageError("the certificate carries no RPPS: not a prescriber certificate")
            at = min(max(now, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
            try:
                self.validate(certificate, [], at)
            except VerificationError as e:
                if e.reason is not Reason.CERTIFICATE_REVOKED:
                    raise UsageError(f"cannot add signer: {e}") from e
            kid = kid_of(certificate)
            target = self.path / "signers" / f"{kid}.pem"
            self.signers[kid] = certificate
            entry = Entry(
                "signer",
                common_name(certificate),
                kid,
                certificate.not_valid_after_utc,
                f"RPPS {rpps_of(certificate)}",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, certificate.public_bytes(serialization.Encoding.PEM))
        return entry

    def add_crl(self, crl: x509.CertificateRevocationList) -> Entry:
        """Install a CRL signed by a known authority, replacing an older one."""
        for authority in self.authorities:
            if crl.issuer == authority.subject and crl.is_signature_valid(
                authority.public_key()  # type: ignore[arg-type]
            ):
                current = self.crl_for(authority)
                if current is not None and _crl_number(current) > _crl_number(crl):
                    raise UsageError(
                        "refusing an older CRL "
                        f"(number {_crl_number(crl)} < {_crl_number(current)})"
                    )
                target = self.path / "crls" / f"{short_fingerprint(authority)}.pem"
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(target, crl.public_bytes(serialization.Encoding.PEM))
                self.crls = [c for c in self.crls if c.issuer != crl.issuer] + [crl]
                return Entry(
                    "crl",
                    common_name(authority),
                    short_fingerprint(authority),
                    crl.next_update_utc,
                    f"{len(list(crl))} revoked",
                )
        raise UsageError("the CRL is not signed by an authority of this trust store")

    def remove(self, ident: str) -> Entry:
        """Remove an authority (by fingerprint prefix) or a signer (by kid)."""
        for entry in self.entries():
            if entry.kind != "crl" and entry.ident == ident:
                folder = "authorities" if entry.kind == "authority" else "signers"
                (self.path / folder / f"{ident}.pem").unlink()
                if entry.kind == "authority":
                    crl = self.path / "crls" / f"{ident}.pem"
                    if crl.exists():
                        crl.unlink()
                return entry
        raise UsageError(f"nothing with id {ident!r} in the trust store (see: trust list)")

    def entries(self) -> list[Entry]:
        rows = [
            Entry("authority", common_name(c), short_fingerprint(c), c.not_valid_after_utc)
            for c in self.authorities
        ]
        for authority in self.authorities:
            crl = self.crl_for(authority)
            if crl is not None:
                rows.append(
                    Entry(
                        "crl",
                        common_name(authority),
                        short_fingerprint(authority),
                        crl.next_update_utc,
                        f"{len(list(crl))} revoked",
                    )
                )
        rows.extend(
            Entry("signer", common_name(c), kid, c.not_valid_after_utc, f"RPPS {rpps_of(c)}")
            for kid, c in sorted(self.signers.items())
        )
        return rows


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def _write_atomic(target: Path, data: bytes) -> None:
    """Replace a trust-store file in one step, never through a symbolic link."""
    from eprescrire import files

    files.replace(target, data, mode=files.PUBLIC, error=TrustStoreError)
