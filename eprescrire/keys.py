"""Key and certificate generation, encrypted storage (PKCS#12) and loading.

Private keys only ever live in PKCS#12 files encrypted with PBKDF2-HMAC-SHA256 (600,000 rounds)
and AES-256-CBC, created with mode 0600 and never overwritten. A key file readable by group or
others, or stored without encryption, is refused unless the caller passes ``insecure=True``.
Nothing here prints or logs key material or passphrases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from eprescrire.errors import KeyFileError, UsageError
from eprescrire.jws import SigningKey

# cryptography warns, and will refuse in a future release, when it parses a certificate whose
# serial number is zero or negative. For the certificates this module reads (from signed files
# and ledger records), that warning is an error, raised where it is made: a filter set once,
# for this module's calls only, costs nothing per certificate (a catch_warnings block would).
warnings.filterwarnings("error", category=CryptographyDeprecationWarning, module=__name__)

KDF_ROUNDS = 600_000
RPPS_PREFIX = "8"  # IGC-Santé convention: the national identifier is 8 + RPPS
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning


@dataclass(frozen=True)
class Credentials:
    """A private key with its certificate and the chain above it (authority last).

    The key is in memory (from a PKCS#12 file) or a :class:`eprescrire.jws.RawSigner` whose
    private key stays on a PKCS#11 token (:mod:`eprescrire.tokens`).
    """

    key: SigningKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def kid(self) -> str:
        return kid_of(self.certificate)


def kid_of(certificate: x509.Certificate) -> str:
    """Key id: base64url of the first 8 bytes of SHA-256 over the certificate's DER (as EU DCC)."""
    from eprescrire.jws import b64url_encode

    return b64url_encode(fingerprint(certificate)[:8])


def der_base64(certificate: x509.Certificate) -> str:
    """The certificate's DER in standard base64: how signed files and ledger records carry it."""
    import base64

    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def certificate_from_base64(text: str) -> x509.Certificate:
    """The inverse of :func:`der_base64`. On failure, raises ``ValueError``: also for a serial
    number that is zero or negative, which RFC 5280 forbids (cryptography only warns today)."""
    import base64
    import binascii

    try:
        der = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {e}") from e
    try:
        certificate = x509.load_der_x509_certificate(der)
    except CryptographyDeprecationWarning as e:  # the filter below made it an error
        raise ValueError(f"not an RFC 5280 certificate: {e}") from e
    if certificate.serial_number <= 0:  # should the filter have been reset by the caller
        raise ValueError("not an RFC 5280 certificate: its serial number is not positive")
    return certificate


def fingerprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def rpps_of(certificate: x509.Certificate) -> str | None:
    """The RPPS carried in the certificate subject's serialNumber (``8`` + 11 digits)."""
    values = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1:
        return None
    value = str(values[0].value)
    if len(value) == 12 and value.startswith(RPPS_PREFIX) and value.isdigit():
        return value[1:]
    return None


def common_name(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else certificate.subject.rfc4514_string()


def _serial() -> int:
    return x509.random_serial_number()


def _ski(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier, DER


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


_Builder = x509.CertificateBuilder | x509.CertificateRevocationListBuilder


def _sign_builder(builder: _Builder, key: SigningKey) -> bytes:
    """DER of the certificate or CRL ``builder`` describes, signed (ECDSA/RSA with SHA-256) by
    ``key``: in memory, or a P-256 key on a token, which signs the to-be-signed bytes."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    encoding = serialization.Encoding.DER
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA256()).public_bytes(encoding)
    if key.algorithm != "ES256":
        raise KeyFileError("an authority's key on a token must be an EC P-256 key")
    # Built once with a throwaway P-256 key, which fixes the to-be-signed bytes (signature
    # algorithm ecdsa-with-SHA256 included); the token then signs those bytes.
    draft = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    tbs = (
        draft.tbs_certificate_bytes
        if isinstance(draft, x509.Certificate)
        else draft.tbs_certlist_bytes
    )
    raw = key.sign(tbs)
    der_signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    return _der(0x30, tbs + _ECDSA_SHA256 + _der(0x03, b"\x00" + der_signature))


def _sign_certificate(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    return x509.load_der_x509_certificate(_sign_builder(builder, key))


def _authority_public_key(authority: Credentials) -> ec.EllipticCurvePublicKey:
    public = authority.certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise KeyFileError("an authority's key must be an EC P-256 key")
    return public


def new_authority(
    name: str,
    *,
    organization: str | None = None,
    not_before: dt.datetime,
    days: int,
) -> Credentials:
    """A P-256 certification authority: key and self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    return authority_for(key, key.public_key(), name, organization, not_before, days)


def authority_for(
    key: SigningKey,
    public_key: ec.EllipticCurvePublicKey,
    name: str,
    organization: str | None,
    not_before: dt.datetime,
    days: int,
) -> Credentials:
    """An authority's self-signed certificate for ``public_key``, signed by ``key`` (its
    private half, in memory or on a token)."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"))
    subject = x509.Name(attributes)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(public_key), critical=False)
    )
    return Credentials(key=key, certificate=_sign_certificate(builder, key))


def new_prescriber(
    authority: Credentials,
    *,
    name: str,
    rpps: str,
    specialty: str,
    not_before: dt.datetime,
    days: int,
) -> Credentials:
    """A prescriber's P-256 key and certificate signed by ``authority``.

    The subject carries the name (CN), the RPPS (serialNumber ``8`` + RPPS) and the specialty
    (title); the certificate is for signing documents only.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = certify_prescriber(
        authority,
        key.public_key(),
        name=name,
        rpps=rpps,
        specialty=specialty,
        not_before=not_before,
        days=days,
    )
    return Credentials(key=key, certificate=certificate, chain=(authority.certificate,))


def certify_prescriber(
    authority: Credentials,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    *,
    name: str,
    rpps: str,
    specialty: str,
    not_before: dt.datetime,
    days: int,
) -> x509.Certificate:
    """A prescriber certificate for ``public_key`` (P-256, or RSA of 2048 bits or more, as the
    key of a CPS card), signed by ``authority``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise KeyFileError(f"an RSA key of {public_key.key_size} bits is too weak (2048+)")
    elif not isinstance(public_key.curve, ec.SECP256R1):
        raise KeyFileError("a prescriber's EC key must be on P-256")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, RPPS_PREFIX + rpps),
            x509.NameAttribute(NameOID.TITLE, specialty),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        ]
    )
    return certify_end_entity(
        authority,
        public_key,
        subject,
        usages=[DOCUMENT_SIGNING_EKU],
        names=[x509.UniformResourceIdentifier(f"urn:rpps:{rpps}")],
        content_commitment=True,
        not_before=not_before,
        days=days,
    )


def new_server(
    authority: Credentials,
    *,
    hosts: list[str],
    addresses: list[str],
    not_before: dt.datetime,
    days: int,
) -> Credentials:
    """A TLS server's P-256 key and certificate signed by ``authority``, for the shared
    ledger's PostgreSQL (``ssl_cert_file``/``ssl_key_file``): ``serverAuth``, the host names
    and IP addresses the sites connect to as subject alternative names (``sslmode=verify-full``
    checks them), the first name as common name."""
    import ipaddress

    if not hosts and not addresses:
        raise UsageError("a server certificate names at least one host (--host) or address (--ip)")
    names: list[x509.GeneralName] = []
    for host in hosts:
        label = host.strip().lower().rstrip(".")
        if (
            not label
            or any(not part or len(part) > 63 for part in label.split("."))
            or not all(c.isascii() and (c.isalnum() or c in "-.*") for c in label)
        ):
            raise UsageError(f"--host {host!r} is not a DNS name")
        names.append(x509.DNSName(label))
    for address in addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address.strip())))
        except ValueError:
            raise UsageError(f"--ip {address!r} is not an IP address") from None
    common = hosts[0].strip().lower().rstrip(".") if hosts else addresses[0].strip()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    certificate = certify_end_entity(
        authority,
        key.public_key(),
        subject,
        usages=[x509.oid.ExtendedKeyUsageOID.SERVER_AUTH],
        names=names,
        content_commitment=False,
        not_before=not_before,
        days=days,
    )
    return Credentials(key=key, certificate=certificate, chain=(authority.certificate,))


def certify_end_entity(
    authority: Credentials,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    subject: x509.Name,
    *,
    usages: list[x509.ObjectIdentifier],
    names: list[x509.GeneralName],
    content_commitment: bool,
    not_before: dt.datetime,
    days: int,
) -> x509.Certificate:
    """An end-entity certificate of one of the project's profiles (prescriber, pharmacy),
    signed by ``authority``: not a CA, digital signature (and non-repudiation when
    ``content_commitment``), the profile's extended key ``usages`` and subject alternative
    ``names``, valid from ``not_before`` for ``days`` days but never beyond the authority's
    own validity."""
    if not authority.certificate.not_valid_before_utc <= not_before:
        not_before = authority.certificate.not_valid_before_utc
    not_after = min(not_before + dt.timedelta(days=days), authority.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=content_commitment,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_authority_public_key(authority)),
            critical=False,
        )
    )
    return _sign_certificate(builder, authority.key)


def new_crl(
    authority: Credentials,
    *,
    revoked: dict[int, dt.datetime] | None = None,
    number: int = 1,
    now: dt.datetime,
    days: int = 30,
) -> x509.CertificateRevocationList:
    """A CRL signed by the authority listing ``revoked`` serials (serial -> revocation time)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_authority_public_key(authority)),
            critical=False,
        )
    )
    for serial, when in sorted((revoked or {}).items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return x509.load_der_x509_crl(_sign_builder(builder, authority.key))


def revoke(
    authority: Credentials,
    crl: x509.CertificateRevocationList,
    serial: int,
    *,
    now: dt.datetime,
) -> x509.CertificateRevocationList:
    """A new CRL with ``serial`` added and the CRL number increased.

    Raises :class:`UsageError` for a serial no certificate can have (RFC 5280: positive, at
    most 20 bytes) or a CRL this authority did not sign."""
    if serial <= 0 or serial.bit_length() >= 160:
        raise UsageError(
            "a certificate serial number is positive and at most 20 bytes (40 hex digits)"
        )
    if not crl.is_signature_valid(_authority_public_key(authority)):
        raise UsageError("the CRL was not signed by this authority")
    revoked = {entry.serial_number: entry.revocation_date_utc for entry in crl}
    revoked.setdefault(serial, now)
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        number = 1
    return new_crl(authority, revoked=revoked, number=number, now=now)


# --------------------------------------------------------------------------------------------
# Storage


def _encryption(passphrase: bytes) -> serialization.KeySerializationEncryption:
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )


def write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode``; never overwrite. Raises KeyFileError (exit 4)."""
    from eprescrire import files

    files.create(path, data, mode=mode, error=KeyFileError, sync=True)


def save_pkcs12(path: Path, credentials: Credentials, passphrase: bytes, label: str) -> None:
    """Write key + certificate + chain as an encrypted PKCS#12 file, mode 0600."""
    if len(passphrase) < 8:
        raise UsageError("a passphrase must have at least 8 characters")
    if not isinstance(credentials.key, ec.EllipticCurvePrivateKey):
        raise KeyFileError("only an in-memory P-256 key can be saved as PKCS#12")
    data = pkcs12.serialize_key_and_certificates(
        label.encode("utf-8"),
        credentials.key,
        credentials.certificate,
        list(credentials.chain) or None,
        _encryption(passphrase),
    )
    write_exclusive(path, data, 0o600)


def load_pkcs12(path: Path, passphrase: bytes | None, *, insecure: bool = False) -> Credentials:
    """Load credentials. On failure, raises :class:`KeyFileError` with one clear line."""
    try:
        info = path.stat()
    except FileNotFoundError as e:
        raise KeyFileError(f"key file not found: {path}") from e
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from e
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file is not a regular file: {path}")
    if info.st_mode & 0o077 and not insecure:
        raise KeyFileError(
            f"key file {path} is accessible by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run chmod 600 on it, or pass --insecure-key"
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from e
    try:
        pkcs12.load_key_and_certificates(data, None)
    except (ValueError, TypeError):
        pass  # encrypted, as it must be
    else:
        if not insecure:
            raise KeyFileError(f"key file {path} is not encrypted; refusing it (--insecure-key)")
    if passphrase is None:
        raise KeyFileError(
            f"no passphrase for {path}: set EPRESCRIRE_PASSPHRASE or use --passphrase-file"
        )
    try:
        key, certificate, chain = pkcs12.load_key_and_certificates(data, passphrase)
    except ValueError as e:
        raise KeyFileError(
            f"cannot open key file {path}: wrong passphrase or not a PKCS#12 file"
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"key file {path} does not hold a P-256 private key")
    if certificate is None:
        raise KeyFileError(f"key file {path} holds no certificate")
    if certificate.public_key() != key.public_key():
        raise KeyFileError(f"key file {path}: certificate does not match the private key")
    return Credentials(key=key, certificate=certificate, chain=tuple(chain))


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
