"""The verifier's trust store: authorities, their CRLs, known signers, the pinned algorithm.

A trust store is a directory::

    trust.toml          optional settings:
                          algorithms = ["ES256"]   the signature algorithms accepted
                                                   (ES256 by default; PS256 and RS256
                                                   on request, for RSA signers such as
                                                   CPS cards, RSA keys of 2048+ bits)
                          crl_grace_days = 7       how long past its next update a CRL is
                                                   still relied on (0-365); beyond it the
                                                   verdict is revocation_unknown
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
import operator
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from eprescrire import jws
from eprescrire.errors import Reason, TrustStoreError, UsageError, VerificationError
from eprescrire.keys import DOCUMENT_SIGNING_EKU, common_name, fingerprint, kid_of, rpps_of

SUPPORTED_ALGORITHMS = jws.ALGORITHMS
#: What a trust store accepts when its trust.toml says nothing.
DEFAULT_ALGORITHMS = frozenset({jws.ALGORITHM})
MAX_CHAIN_DEPTH = 2
#: Days a CRL is still relied on after its next update (offline pharmacies renew them late);
#: beyond that, revocation is unknown. Set in trust.toml as ``crl_grace_days``.
DEFAULT_CRL_GRACE_DAYS = 7
MAX_CRL_GRACE_DAYS = 365
_SETTINGS = frozenset({"algorithms", "crl_grace_days"})
#: CRL extensions understood here; a critical extension outside them makes the CRL unusable
#: (RFC 5280 §5.2). The issuing distribution point is read by :func:`crl_problem`.
_KNOWN_CRL_EXTENSIONS = frozenset(
    {
        x509.oid.ExtensionOID.CRL_NUMBER,
        x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        x509.oid.ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        x509.oid.ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        x509.oid.ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    }
)
_KNOWN_ENTRY_EXTENSIONS = frozenset(
    {x509.oid.CRLEntryExtensionOID.CRL_REASON, x509.oid.CRLEntryExtensionOID.INVALIDITY_DATE}
)


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


def _require_pharmacy_signing(_policy: object, _cert: object, eku: x509.ExtendedKeyUsage) -> None:
    from eprescrire.pharmacy import PHARMACY_EKU

    if PHARMACY_EKU not in eku:
        raise ValueError("extended key usage lacks eprescrire pharmacy signing")


def _pharmacy_policy() -> verification.ExtensionPolicy:
    """What a pharmacy's certificate must say (checkpoints, consent): :mod:`eprescrire.pharmacy`'s
    key usage, digitalSignature, not a CA. A prescriber's certificate is refused."""
    policy = verification.ExtensionPolicy.permit_all()
    return (
        policy.require_present(
            x509.KeyUsage, verification.Criticality.CRITICAL, _require_signing_usage
        )
        .require_present(
            x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _require_pharmacy_signing
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
        return parse_crl(data, str(path))
    except UsageError as e:
        raise TrustStoreError(str(e)) from e


def parse_crl(data: bytes, name: str) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER bytes, fully parsed now (its lazy parts too), so that a damaged
    one is refused here. On failure, raises :class:`UsageError` naming ``name``."""
    try:
        if b"-----BEGIN" in data:
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        _ = crl.issuer, crl.last_update_utc, crl.next_update_utc, list(crl.extensions)
        for entry in crl:
            _ = entry.serial_number, entry.revocation_date_utc, list(entry.extensions)
        return crl
    except Exception as e:  # any parser failure (ValueError, DuplicateExtension, ...)
        raise UsageError(f"{name} is not a valid CRL") from e


#: Chains remembered by a trust store (one per signer certificate seen in a session).
_CHAIN_CACHE_SIZE = 4096


def _same_objects(a: Sequence[object], b: Sequence[object]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


def crl_problem(crl: x509.CertificateRevocationList) -> str | None:
    """Why ``crl`` cannot stand as its authority's full CRL, or None.

    Only a complete CRL is relied on: a delta CRL, one limited in scope by its issuing
    distribution point (CA or user certificates only, some reasons only, indirect, attribute
    certificates), or one with a critical extension not understood here would, taken as the
    full list, let a revoked certificate through.
    """
    try:
        extensions = list(crl.extensions)
        entries = [list(entry.extensions) for entry in crl]
    except Exception:  # already refused by parse_crl; a stored file could still be damaged
        return "it cannot be parsed"
    for extension in extensions:
        if extension.oid == x509.oid.ExtensionOID.DELTA_CRL_INDICATOR:
            return "it is a delta CRL (only a full CRL is used)"
        if extension.oid == x509.oid.ExtensionOID.ISSUING_DISTRIBUTION_POINT:
            point = extension.value
            assert isinstance(point, x509.IssuingDistributionPoint)
            if point.indirect_crl:
                return "it is an indirect CRL"
            if point.only_some_reasons is not None:
                return "it covers only some revocation reasons"
            if point.only_contains_ca_certs:
                return "it covers only CA certificates"
            if point.only_contains_user_certs:
                return "it covers only end-entity certificates"
            if point.only_contains_attribute_certs:
                return "it covers only attribute certificates"
        elif extension.critical and extension.oid not in _KNOWN_CRL_EXTENSIONS:
            return f"it has an unknown critical extension ({extension.oid.dotted_string})"
    for entry_extensions in entries:
        for extension in entry_extensions:
            if extension.critical and extension.oid not in _KNOWN_ENTRY_EXTENSIONS:
                return f"an entry has an unknown critical extension ({extension.oid.dotted_string})"
    if crl.next_update_utc is None:
        return "it has no next update date"
    return None


#: Fewest characters of an id that ``trust remove`` takes as a prefix.
MIN_PREFIX = 4


def _starts_with(entry: Entry, prefix: str) -> bool:
    """Fingerprints are hex (any case typed); signer kids are base64url (case matters)."""
    if entry.kind == "authority":
        return entry.ident.startswith(prefix.lower())
    return entry.ident.startswith(prefix)


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


@dataclass(frozen=True)
class _Passed:
    """A chain :meth:`TrustStore.validate` accepted, and what its answer depended on besides
    the times: the trust anchors and CRLs (the same objects), the grace. At another signing
    time and verification time the same chain passes again when every certificate of it is
    valid at the signing time (strictly inside its period, as :meth:`TrustStore._known_chain`)
    and no CRL of it is past its next update by more than the grace."""

    authorities: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    grace: dt.timedelta
    chain: tuple[x509.Certificate, ...]
    # Every certificate of the chain is valid strictly between the latest start and the
    # earliest end of their validity periods, and nowhere else.
    valid_after: dt.datetime
    valid_before: dt.datetime
    renew_by: dt.datetime  # the earliest next update of its CRLs, plus the grace


@dataclass
class TrustStore:
    """The authorities, CRLs and signers a verifier trusts, read from a directory."""

    path: Path
    authorities: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    signers: dict[str, x509.Certificate] = field(default_factory=dict)
    algorithms: frozenset[str] = DEFAULT_ALGORITHMS
    crl_grace: dt.timedelta = dt.timedelta(days=DEFAULT_CRL_GRACE_DAYS)
    # What does not change from one code to the next in a long session (`counter`): the CRL
    # chosen for an authority, as long as the list of CRLs is the same objects; a chain built
    # for a signer, as long as the authorities are the same objects (see _known_chain).
    _crl_cache: dict[bytes, tuple[tuple[x509.CertificateRevocationList, ...], Any, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _chain_cache: dict[tuple[bytes, ...], tuple[tuple[x509.Certificate, ...], list[Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _fingerprints: dict[int, tuple[x509.Certificate, bytes]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # A chain that passed every check of validate (path and revocation), with what may change
    # with the times: see _validated.
    _passed: dict[tuple[bytes, ...], _Passed] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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
            store._configure(config)
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

    def _configure(self, config: Path) -> None:
        """Read trust.toml. On failure, raises :class:`TrustStoreError` (one line)."""
        try:
            settings = tomllib.loads(config.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise TrustStoreError(f"{config} is not valid TOML: {e}") from e
        except RecursionError:
            raise TrustStoreError(f"{config} is not valid TOML: nested too deeply") from None
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise TrustStoreError(
                f"{config}: unknown setting(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_SETTINGS))})"
            )
        algorithms = settings.get("algorithms", [jws.ALGORITHM])
        if (
            not isinstance(algorithms, list)
            or not algorithms
            or not all(isinstance(a, str) and a in SUPPORTED_ALGORITHMS for a in algorithms)
        ):
            raise TrustStoreError(
                f"{config}: algorithms must be a non-empty list of names among "
                f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}"
            )
        self.algorithms = frozenset(algorithms)
        grace = settings.get("crl_grace_days", DEFAULT_CRL_GRACE_DAYS)
        if isinstance(grace, bool) or not isinstance(grace, int):
            raise TrustStoreError(f"{config}: crl_grace_days must be a whole number of days")
        if not 0 <= grace <= MAX_CRL_GRACE_DAYS:
            raise TrustStoreError(
                f"{config}: crl_grace_days must be between 0 and {MAX_CRL_GRACE_DAYS}"
            )
        self.crl_grace = dt.timedelta(days=grace)

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
        """The newest full CRL signed by ``authority`` (partial or delta CRLs never count).

        Remembered per authority for as long as :attr:`crls` holds the same CRL objects (a CRL
        file is read once, when the store is opened; ``add_crl`` changes the list): a CRL's
        signature is checked once, not twice per code verified."""
        return self._crl_and_due(authority)[0]

    def _crl_and_due(
        self, authority: x509.Certificate
    ) -> tuple[x509.CertificateRevocationList | None, dt.datetime | None]:
        """:meth:`crl_for` and that CRL's next update (None for none), remembered together."""
        key = self._fingerprint(authority)
        known = self._crl_cache.get(key)
        if known is not None and _same_objects(known[0], self.crls):
            return known[1], known[2]
        best = self._newest_crl(authority)
        due = None if best is None else best.next_update_utc
        self._crl_cache[key] = (tuple(self.crls), best, due)
        return best, due

    def _newest_crl(self, authority: x509.Certificate) -> x509.CertificateRevocationList | None:
        best: x509.CertificateRevocationList | None = None
        for crl in self.crls:
            if crl.issuer != authority.subject:
                continue
            if not crl.is_signature_valid(authority.public_key()):  # type: ignore[arg-type]
                continue
            if crl_problem(crl) is not None:
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
        *,
        now: dt.datetime | None = None,
        profile: str = "prescriber",
    ) -> list[x509.Certificate]:
        """Validate the signer's chain as of ``at`` (the signing time) and its revocation as
        known at ``now`` (the verification time; default: the real clock); return the chain,
        signer first, trust anchor last. ``profile`` is what the signer's certificate must be:
        a prescriber's (document signing) or a pharmacy's (:mod:`eprescrire.pharmacy`).

        On failure, raises :class:`VerificationError` with ``certificate_expired``,
        ``untrusted_chain``, ``certificate_revoked`` or ``revocation_unknown`` (no full CRL
        for an authority of the chain, or one past its next update by more than the grace).
        """
        # The profile is part of the key: a chain built for a pharmacy's certificate never
        # stands for a prescriber's (nor the reverse).
        key = (
            profile.encode(),
            self._fingerprint(certificate),
            *(self._fingerprint(c) for c in intermediates),
        )
        when = now if now is not None else dt.datetime.now(dt.UTC)
        passed = self._validated(key, at, when)
        if passed is not None:
            return passed
        if _is_ca(certificate):
            raise VerificationError(
                Reason.UNTRUSTED_CHAIN, "signer certificate is a CA, not a prescriber"
            )
        if not self.authorities:
            raise VerificationError(Reason.UNTRUSTED_CHAIN, "the trust store has no authority")
        chain = self._known_chain(key, at)
        try:
            if chain is None:
                chain = self._build_chain(certificate, intermediates, at, profile)
                self._remember_chain(key, chain)
        except verification.VerificationError as e:
            # Trusted but used outside its validity, or not trusted at all? Ask again at a
            # moment the signer certificate was valid: only a trusted chain passes then.
            probe = min(max(at, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
            try:
                chain = self._build_chain(certificate, intermediates, probe, profile)
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
        dues = []
        for child, parent in itertools.pairwise(chain):
            crl = self.crl_for(parent)
            if crl is None:
                raise VerificationError(
                    Reason.REVOCATION_UNKNOWN,
                    f"no CRL from authority {common_name(parent)!r}: revocation cannot be checked",
                )
            if crl.get_revoked_certificate_by_serial_number(child.serial_number) is not None:
                raise VerificationError(
                    Reason.CERTIFICATE_REVOKED,
                    f"certificate {child.serial_number:x} was revoked by {common_name(parent)!r}",
                )
            due = crl.next_update_utc
            if due is None:  # refused by add_crl; a file copied in by hand
                raise VerificationError(
                    Reason.REVOCATION_UNKNOWN,
                    f"the CRL of {common_name(parent)!r} has no next update date",
                )
            if when > due + self.crl_grace:
                raise VerificationError(
                    Reason.REVOCATION_UNKNOWN,
                    f"the CRL of {common_name(parent)!r} was due for renewal on "
                    f"{due:%Y-%m-%d}, beyond the {self.crl_grace.days}-day grace of this trust "
                    "store: install a newer one (trust crl)",
                )
            dues.append(due)
        self._remember_passed(key, chain, dues)
        return list(chain)

    def _validated(
        self, key: tuple[bytes, ...], at: dt.datetime, when: dt.datetime
    ) -> list[x509.Certificate] | None:
        """The chain :meth:`validate` accepted before for ``key``, if its answer holds at
        ``at`` and ``when`` with the same trust material (else None: validate decides)."""
        known = self._passed.get(key)
        if (
            known is None
            or known.grace != self.crl_grace
            or when > known.renew_by
            or not _same_objects(known.authorities, self.authorities)
            or not _same_objects(known.crls, self.crls)
        ):
            return None
        if known.valid_after < at < known.valid_before:
            return list(known.chain)
        return None

    def _remember_passed(
        self, key: tuple[bytes, ...], chain: list[x509.Certificate], dues: list[dt.datetime]
    ) -> None:
        if not dues:  # no CRL was consulted: nothing is remembered
            return
        if len(self._passed) >= _CHAIN_CACHE_SIZE:  # bounded: a long session, any input
            self._passed.clear()
        self._passed[key] = _Passed(
            authorities=tuple(self.authorities),
            crls=tuple(self.crls),
            grace=self.crl_grace,
            chain=tuple(chain),
            valid_after=max(c.not_valid_before_utc for c in chain),
            valid_before=min(c.not_valid_after_utc for c in chain),
            renew_by=min(dues) + self.crl_grace,
        )

    def _known_chain(
        self, key: tuple[bytes, ...], at: dt.datetime
    ) -> list[x509.Certificate] | None:
        """A chain built before for the same signer and presented certificates, if it holds
        at ``at`` too. Path validation depends on the time only through the validity periods
        of the certificates of the path (signatures, names, extensions, policies do not): a
        path valid before is valid at ``at`` when every certificate of it is valid at ``at``
        (strictly inside its period: the edges are left to the verifier) and the trust anchors
        are the same objects. Revocation is not cached here: :meth:`validate` checks it every
        time against :meth:`crl_for`."""
        known = self._chain_cache.get(key)
        if known is None or not _same_objects(known[0], self.authorities):
            return None
        chain = known[1]
        if all(c.not_valid_before_utc < at < c.not_valid_after_utc for c in chain):
            return list(chain)
        return None

    def _fingerprint(self, certificate: x509.Certificate) -> bytes:
        """:func:`fingerprint`, computed once per certificate object (the object is held, so
        its id is not reused while remembered)."""
        known = self._fingerprints.get(id(certificate))
        if known is not None and known[0] is certificate:
            return known[1]
        if len(self._fingerprints) >= _CHAIN_CACHE_SIZE:
            self._fingerprints.clear()
        value = fingerprint(certificate)
        self._fingerprints[id(certificate)] = (certificate, value)
        return value

    def _remember_chain(self, key: tuple[bytes, ...], chain: list[x509.Certificate]) -> None:
        if len(self._chain_cache) >= _CHAIN_CACHE_SIZE:  # bounded: a long session, any input
            self._chain_cache.clear()
        self._chain_cache[key] = (tuple(self.authorities), list(chain))

    def _build_chain(
        self,
        certificate: x509.Certificate,
        intermediates: list[x509.Certificate],
        at: dt.datetime,
        profile: str = "prescriber",
    ) -> list[x509.Certificate]:
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(self.authorities))
            .time(at)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=_pharmacy_policy() if profile == "pharmacy" else _signer_policy(),
            )
        )
        return list(builder.build_client_verifier().verify(certificate, intermediates).chain)

    def stale_crls(self, chain: list[x509.Certificate], now: dt.datetime) -> list[str]:
        """Warnings for the CRLs of ``chain`` whose next update is past but within the grace
        (beyond it, :meth:`validate` refuses): revocations made since then are unknown here
        (offline). The verdict still stands on the CRL we have."""
        warnings = []
        for authority in chain[1:]:
            crl, due = self._crl_and_due(authority)
            if crl is not None and due is not None and due < now:
                warnings.append(
                    f"the CRL of {common_name(authority)!r} was due for renewal on "
                    f"{due:%Y-%m-%d}: install a newer one (trust crl)"
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
        """Install a full CRL signed by a known authority, replacing an older one.

        Raises :class:`UsageError` for a CRL that cannot stand as the full list (a delta CRL,
        one limited in scope, one with an unknown critical extension: see :func:`crl_problem`),
        an older one, or one no authority of the store signed."""
        problem = crl_problem(crl)
        if problem is not None:
            raise UsageError(f"refusing the CRL: {problem}")
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
        """Remove an authority (by fingerprint) or a signer (by kid); an unambiguous prefix of
        at least :data:`MIN_PREFIX` characters will do, an ambiguous one is refused naming the
        candidates."""
        ident = ident.strip()
        removable = [e for e in self.entries() if e.kind != "crl"]
        matches = [e for e in removable if e.ident == ident]
        if not matches and len(ident) >= MIN_PREFIX:
            matches = [e for e in removable if _starts_with(e, ident)]
        if not matches:
            hint = f" (a prefix needs {MIN_PREFIX} characters)" if len(ident) < MIN_PREFIX else ""
            raise UsageError(
                f"nothing with id {ident!r} in the trust store{hint} (see: trust list)"
            )
        if len(matches) > 1:
            names = ", ".join(f"{e.kind} {e.ident}" for e in matches)
            raise UsageError(f"{ident!r} is ambiguous: {names}; give more characters")
        (entry,) = matches
        folder = "authorities" if entry.kind == "authority" else "signers"
        (self.path / folder / f"{entry.ident}.pem").unlink()
        if entry.kind == "authority":
            crl = self.path / "crls" / f"{entry.ident}.pem"
            if crl.exists():
                crl.unlink()
        return entry

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
