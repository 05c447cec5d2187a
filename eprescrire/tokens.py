"""Signing with a private key that never leaves a PKCS#11 token (smart card, HSM, SoftHSM2).

A key is named by an RFC 7512 URI, e.g.::

    pkcs11:token=CPS;object=signature?module-path=/usr/lib/softhsm/libsofthsm2.so

Path attributes ``token``, ``manufacturer``, ``serial``, ``model`` and ``slot-id`` choose the
token, ``object`` (label) and ``id`` the key, ``type`` must be ``private`` when given. The query
may give ``module-path`` (else ``$EPRESCRIRE_PKCS11_MODULE``) and ``pin-source`` (a file holding
the PIN). ``pin-value`` is refused: a PIN is never written on a command line; it comes from
``--pin-file``, ``$EPRESCRIRE_PIN`` or a prompt.

A P-256 key signs ES256: the token computes ECDSA over the SHA-256 digest and returns ``r || s``,
the JWS form already. An RSA key (2048 bits or more, as on CPS cards) signs PS256, or RS256 when
``$EPRESCRIRE_RSA_ALGORITHM`` asks for it or the token offers no PSS mechanism. The signer
certificate is read from the token (the object with the key's id, else its label), else from
the file ``$EPRESCRIRE_PKCS11_CERT``; it must hold the key's public key.

The binding is python-pkcs11 (MIT licence, like this project). PyKCS11 would do the same job
but is GPL-licensed, which would force the GPL on an MIT project distributed with it.

Errors are :class:`~eprescrire.errors.KeyFileError` (exit 4) with one line that never holds
the PIN.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eprescrire import jws
from eprescrire.errors import KeyFileError, UsageError

SCHEME = "pkcs11:"
MODULE_ENV = "EPRESCRIRE_PKCS11_MODULE"
PIN_ENV = "EPRESCRIRE_PIN"
CERT_ENV = "EPRESCRIRE_PKCS11_CERT"
RSA_ALGORITHM_ENV = "EPRESCRIRE_RSA_ALGORITHM"
INSTALL_HINT = (
    "install the token's PKCS#11 library (SoftHSM2: apt-get install softhsm2; "
    "smart cards: apt-get install opensc, or the card vendor's middleware)"
)
_PATH_ATTRIBUTES = frozenset(
    {"token", "manufacturer", "serial", "model", "object", "id", "type", "slot-id"}
)
_QUERY_ATTRIBUTES = frozenset({"module-path", "module-name", "pin-source"})
# DigestInfo prefix of SHA-256 (RFC 8017 §9.2), for tokens that only do raw PKCS#1 v1.5.
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def is_uri(text: str) -> bool:
    return text.startswith(SCHEME)


@dataclass(frozen=True)
class TokenURI:
    """The parts of a ``pkcs11:`` URI that eprescrire uses (RFC 7512)."""

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    slot_id: int | None = None
    module_path: str | None = None
    pin_source: str | None = None

    def describe(self) -> str:
        """A short name for messages (never a secret: the URI may hold none)."""
        parts = [f"token={self.token}" if self.token else "any token"]
        if self.object:
            parts.append(f"object={self.object}")
        if self.id is not None:
            parts.append(f"id={self.id.hex()}")
        return ";".join(parts)


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"pkcs11: URI attribute {name} is not UTF-8") from e


def parse_uri(text: str) -> TokenURI:
    """Parse an RFC 7512 URI. On a malformed or unsafe URI, raises :class:`UsageError`."""
    if not is_uri(text):
        raise UsageError("a token key is named by a pkcs11: URI")
    body = text[len(SCHEME) :]
    path, _, query = body.partition("?")
    values: dict[str, bytes] = {}
    for part, separator, allowed in ((path, ";", _PATH_ATTRIBUTES), (query, "&", None)):
        for item in part.split(separator) if part else []:
            name, equals, raw = item.partition("=")
            if not equals or not name:
                raise UsageError(f"pkcs11: URI attribute {name[:30]!r} has no value")
            if name == "pin-value":
                raise UsageError(
                    "pkcs11: URI must not carry pin-value (a PIN on the command line is visible "
                    f"to other users): set {PIN_ENV} or use --pin-file"
                )
            known = allowed if allowed is not None else _QUERY_ATTRIBUTES
            if name not in known and not name.startswith("x-"):
                raise UsageError(f"pkcs11: URI attribute {name[:30]!r} is not supported")
            if name in values:
                raise UsageError(f"pkcs11: URI repeats attribute {name}")
            values[name] = unquote_to_bytes(raw)
    key_type = _text(values["type"], "type") if "type" in values else None
    if key_type not in (None, "private"):
        raise UsageError("pkcs11: URI type must be 'private' (the signing key)")
    slot_id = None
    if "slot-id" in values:
        try:
            slot_id = int(_text(values["slot-id"], "slot-id"))
        except ValueError as e:
            raise UsageError("pkcs11: URI slot-id must be a number") from e
    module_name = values.get("module-name")
    module_path = _text(values["module-path"], "module-path") if "module-path" in values else None
    if module_path is None and module_name is not None:
        raise UsageError("pkcs11: URI module-name is not supported; give module-path")

    def get(name: str) -> str | None:
        return _text(values[name], name) if name in values else None

    return TokenURI(
        token=get("token"),
        manufacturer=get("manufacturer"),
        serial=get("serial"),
        model=get("model"),
        object=get("object"),
        id=values.get("id"),
        type=key_type,
        slot_id=slot_id,
        module_path=module_path,
        pin_source=get("pin-source"),
    )


# --------------------------------------------------------------------------------------------
# Library, token, session


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise KeyFileError("the PKCS#11 binding is not installed: pip install python-pkcs11") from e
    return pkcs11


def module_path(uri: TokenURI) -> Path:
    """The PKCS#11 library: ``module-path`` of the URI, else ``$EPRESCRIRE_PKCS11_MODULE``."""
    value = uri.module_path or os.environ.get(MODULE_ENV)
    if not value:
        raise KeyFileError(
            f"no PKCS#11 library given: add ?module-path=… to the URI or set {MODULE_ENV}; "
            + INSTALL_HINT
        )
    return Path(value)


def load_library(path: Path) -> Any:
    pkcs11 = _pkcs11()
    if not path.is_file():
        raise KeyFileError(f"PKCS#11 library {path} not found: {INSTALL_HINT}")
    try:
        return pkcs11.lib(str(path))
    except (pkcs11.exceptions.PKCS11Error, OSError) as e:
        raise KeyFileError(f"{path} is not a usable PKCS#11 library: {INSTALL_HINT}") from e


def _matches(token: Any, uri: TokenURI) -> bool:
    def same(value: str | None, actual: Any) -> bool:
        return value is None or str(actual).strip() == value

    return (
        same(uri.token, token.label)
        and same(uri.manufacturer, token.manufacturer_id)
        and same(uri.serial, _str(token.serial))
        and same(uri.model, token.model)
    )


def _str(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def find_token(library: Any, uri: TokenURI) -> Any:
    """The one token the URI designates. Raises KeyFileError when none or several match."""
    pkcs11 = _pkcs11()
    try:
        slots = library.get_slots(token_present=True)
        found = []
        for slot in slots:
            if uri.slot_id is not None and slot.slot_id != uri.slot_id:
                continue
            token = slot.get_token()
            if _matches(token, uri):
                found.append(token)
    except pkcs11.exceptions.PKCS11Error as e:
        raise KeyFileError(f"cannot list the PKCS#11 tokens: {type(e).__name__}") from e
    if not found:
        raise KeyFileError(f"no PKCS#11 token matches {uri.describe()}: is the card inserted?")
    if len(found) > 1:
        raise KeyFileError(
            f"{len(found)} PKCS#11 tokens match {uri.describe()}: add serial=… to the URI"
        )
    return found[0]


def read_pin(uri: TokenURI, pin_file: Path | None, what: str) -> str:
    """The PIN: ``--pin-file``, the URI's ``pin-source`` file, ``$EPRESCRIRE_PIN``, a prompt."""
    source = pin_file
    if source is None and uri.pin_source is not None:
        location = uri.pin_source
        if location.startswith("file:"):
            location = location[len("file:") :]
            if location.startswith("//"):
                location = location[2:]
        elif "|" in location or ":" in location.split("/", 1)[0]:
            raise UsageError("pkcs11: URI pin-source must be a file (file:/path or /path)")
        source = Path(location)
    if source is not None:
        try:
            lines = source.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise KeyFileError(f"cannot read the PIN file {source}") from e
        return lines[0] if lines else ""
    value = os.environ.get(PIN_ENV)
    if value:
        return value
    if sys.stdin.isatty() and sys.stderr.isatty():
        import getpass

        return getpass.getpass(f"PIN for {what}: ")
    raise KeyFileError(f"no PIN for {what}: set {PIN_ENV} or use --pin-file")


def open_session(token: Any, pin: str, *, rw: bool = False) -> Any:
    pkcs11 = _pkcs11()
    exceptions = pkcs11.exceptions
    name = str(token.label).strip()
    try:
        try:
            return token.open(user_pin=pin, rw=rw)
        except exceptions.UserAlreadyLoggedIn:
            # Another session of this process is logged in (an authority and a prescriber key
            # on the same token): PKCS#11 logins are per application, so this one is too.
            return token.open(rw=rw)
    except (exceptions.PinIncorrect, exceptions.PinLenRange, exceptions.PinInvalid) as e:
        raise KeyFileError(f"wrong PIN for token {name!r}") from e
    except exceptions.PinLocked as e:
        raise KeyFileError(f"the PIN of token {name!r} is locked") from e
    except exceptions.PinExpired as e:
        raise KeyFileError(f"the PIN of token {name!r} has expired: change it first") from e
    except exceptions.PKCS11Error as e:
        raise KeyFileError(f"cannot open token {name!r}: {type(e).__name__}") from e


# --------------------------------------------------------------------------------------------
# Keys and certificates on the token


def _search(uri: TokenURI, label: str | None = None, key_id: bytes | None = None) -> dict[Any, Any]:
    pkcs11 = _pkcs11()
    attributes: dict[Any, Any] = {}
    label = label if label is not None else uri.object
    key_id = key_id if key_id is not None else uri.id
    if label is not None:
        attributes[pkcs11.Attribute.LABEL] = label
    if key_id is not None:
        attributes[pkcs11.Attribute.ID] = key_id
    return attributes


def find_private_key(session: Any, uri: TokenURI, *, required: bool = True) -> Any | None:
    """The one private key the URI names (by object label and/or id)."""
    pkcs11 = _pkcs11()
    template = {
        pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
        **_search(uri),
    }
    try:
        found = list(session.get_objects(template))
    except pkcs11.exceptions.PKCS11Error as e:
        raise KeyFileError(f"cannot search the token: {type(e).__name__}") from e
    if not found:
        if not required:
            return None
        raise KeyFileError(f"no private key {uri.describe()} on the token")
    if len(found) > 1:
        raise KeyFileError(
            f"{len(found)} private keys match {uri.describe()}: name one with object= or id="
        )
    return found[0]


def _attribute(obj: Any, attribute: Any) -> Any:
    pkcs11 = _pkcs11()
    try:
        return obj[attribute]
    except (pkcs11.exceptions.PKCS11Error, KeyError, NotImplementedError):
        return None


def key_id_and_label(key: Any) -> tuple[bytes | None, str | None]:
    pkcs11 = _pkcs11()
    key_id = _attribute(key, pkcs11.Attribute.ID)
    label = _attribute(key, pkcs11.Attribute.LABEL)
    return (bytes(key_id) if key_id else None), (str(label) if label else None)


def _public_from_token(
    session: Any, key: Any
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey | None:
    """The public key matching ``key`` (a public key object with the same id or label)."""
    pkcs11 = _pkcs11()
    key_id, label = key_id_and_label(key)
    template = {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY}
    if key_id:
        template[pkcs11.Attribute.ID] = key_id
    elif label:
        template[pkcs11.Attribute.LABEL] = label
    else:
        return None
    found = list(session.get_objects(template))
    if len(found) != 1:
        return None
    public = found[0]
    if public.key_type == pkcs11.KeyType.RSA:
        modulus = int.from_bytes(public[pkcs11.Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[pkcs11.Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if public.key_type == pkcs11.KeyType.EC:
        if bytes(public[pkcs11.Attribute.EC_PARAMS]) != _P256_PARAMS:
            return None
        point = bytes(public[pkcs11.Attribute.EC_POINT])
        if point[:2] == b"\x04\x41":  # DER OCTET STRING around the point, as the standard says
            point = point[2:]
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            return None
    return None


_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # OID prime256v1 / secp256r1


def find_certificate(session: Any, key: Any) -> x509.Certificate | None:
    """The X.509 certificate stored with ``key`` (same id, else same label), if any."""
    pkcs11 = _pkcs11()
    key_id, label = key_id_and_label(key)
    for attributes in (
        {pkcs11.Attribute.ID: key_id} if key_id else None,
        {pkcs11.Attribute.LABEL: label} if label else None,
    ):
        if attributes is None:
            continue
        template = {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE, **attributes}
        for obj in session.get_objects(template):
            value = _attribute(obj, pkcs11.Attribute.VALUE)
            if not value:
                continue
            try:
                certificate = x509.load_der_x509_certificate(bytes(value))
            except ValueError:
                continue
            return certificate
    return None


def check_key_type(key: Any, describe: str) -> str:
    """``"EC"`` for a P-256 key, ``"RSA"`` for an RSA key of 2048 to 4096 bits; anything else
    is refused (KeyFileError)."""
    pkcs11 = _pkcs11()
    if key.key_type == pkcs11.KeyType.EC:
        params = _attribute(key, pkcs11.Attribute.EC_PARAMS)
        if params is not None and bytes(params) != _P256_PARAMS:
            raise KeyFileError(
                f"the key {describe} is on another elliptic curve; eprescrire signs with "
                "P-256 (ES256) or RSA of 2048 bits or more (PS256/RS256)"
            )
        return "EC"
    if key.key_type == pkcs11.KeyType.RSA:
        bits = key.key_length
        if not jws.MIN_RSA_BITS <= bits <= jws.MAX_RSA_BITS:
            raise KeyFileError(
                f"the RSA key {describe} has {bits} bits; eprescrire needs "
                f"{jws.MIN_RSA_BITS} to {jws.MAX_RSA_BITS}"
            )
        return "RSA"
    raise KeyFileError(
        f"the key {describe} is neither EC P-256 nor RSA; eprescrire cannot sign with it"
    )


# --------------------------------------------------------------------------------------------
# The signer


@dataclass
class TokenSigner:
    """A :class:`eprescrire.jws.RawSigner` whose private key stays on the token."""

    session: Any
    key: Any
    algorithm: str
    mechanisms: frozenset[Any] = field(default_factory=frozenset)

    def sign(self, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        Mechanism, MGF = pkcs11.Mechanism, pkcs11.MGF
        try:
            if self.algorithm == jws.ALGORITHM:
                if Mechanism.ECDSA in self.mechanisms or not self.mechanisms:
                    signature = self.key.sign(jws.sha256(data), mechanism=Mechanism.ECDSA)
                else:
                    signature = self.key.sign(data, mechanism=Mechanism.ECDSA_SHA256)
                if len(signature) != jws.SIGNATURE_BYTES:
                    raise KeyFileError("the token returned an ECDSA signature of the wrong size")
                return bytes(signature)
            if self.algorithm == jws.PS256:
                parameters = (Mechanism.SHA256, MGF.SHA256, jws.PSS_SALT_BYTES)
                if Mechanism.SHA256_RSA_PKCS_PSS in self.mechanisms or not self.mechanisms:
                    return bytes(
                        self.key.sign(
                            data,
                            mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
                            mechanism_param=parameters,
                        )
                    )
                return bytes(
                    self.key.sign(
                        jws.sha256(data),
                        mechanism=Mechanism.RSA_PKCS_PSS,
                        mechanism_param=parameters,
                    )
                )
            if Mechanism.SHA256_RSA_PKCS in self.mechanisms or not self.mechanisms:
                return bytes(self.key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            return bytes(
                self.key.sign(_SHA256_DIGEST_INFO + jws.sha256(data), mechanism=Mechanism.RSA_PKCS)
            )
        except pkcs11.exceptions.PKCS11Error as e:
            raise KeyFileError(f"the token refused to sign: {type(e).__name__}") from e


def choose_algorithm(kind: str, mechanisms: frozenset[Any]) -> str:
    """ES256 for EC; PS256 for RSA unless ``$EPRESCRIRE_RSA_ALGORITHM`` asks RS256 or the token
    offers no PSS mechanism."""
    pkcs11 = _pkcs11()
    Mechanism = pkcs11.Mechanism
    if kind == "EC":
        if mechanisms and not {Mechanism.ECDSA, Mechanism.ECDSA_SHA256} & mechanisms:
            raise KeyFileError("the token offers no ECDSA mechanism")
        return jws.ALGORITHM
    wanted = os.environ.get(RSA_ALGORITHM_ENV, "").strip().upper()
    if wanted and wanted not in jws.RSA_ALGORITHMS:
        raise KeyFileError(f"{RSA_ALGORITHM_ENV} must be PS256 or RS256")
    pss = {Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.RSA_PKCS_PSS}
    pkcs1 = {Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS}
    if wanted == jws.RS256 or (mechanisms and not pss & mechanisms):
        if mechanisms and not pkcs1 & mechanisms:
            raise KeyFileError("the token offers no RSA signature mechanism")
        return jws.RS256
    if wanted == jws.PS256 and mechanisms and not pss & mechanisms:
        raise KeyFileError("the token offers no RSA-PSS mechanism (PS256): try RS256")
    return jws.PS256


def _mechanisms(token: Any) -> frozenset[Any]:
    pkcs11 = _pkcs11()
    try:
        return frozenset(token.slot.get_mechanisms())
    except pkcs11.exceptions.PKCS11Error:
        return frozenset()


def _same_key(certificate: x509.Certificate, public: Any) -> bool:
    from cryptography.hazmat.primitives import serialization

    form = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        certificate.public_key().public_bytes(serialization.Encoding.DER, form)
        == public.public_bytes(serialization.Encoding.DER, form)
    )


def load_credentials(text: str, pin_file: Path | None = None) -> Any:
    """Open the token the URI names, log in and return :class:`eprescrire.keys.Credentials`
    whose key is a :class:`TokenSigner`. Raises KeyFileError (exit 4) or UsageError (exit 2)."""
    from eprescrire.keys import Credentials

    uri = parse_uri(text)
    library = load_library(module_path(uri))
    token = find_token(library, uri)
    pin = read_pin(uri, pin_file, f"token {str(token.label).strip()!r}")
    session = open_session(token, pin)
    key = find_private_key(session, uri)
    kind = check_key_type(key, uri.describe())
    mechanisms = _mechanisms(token)
    algorithm = choose_algorithm(kind, mechanisms)
    certificate = find_certificate(session, key)
    if certificate is None:
        cert_file = os.environ.get(CERT_ENV)
        if not cert_file:
            raise KeyFileError(
                f"no certificate for {uri.describe()} on the token: write it there "
                f"(keys prescriber --key …) or set {CERT_ENV} to its PEM file"
            )
        try:
            data = Path(cert_file).read_bytes()
            certificate = (
                x509.load_pem_x509_certificate(data)
                if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data)
            )
        except (OSError, ValueError) as e:
            raise KeyFileError(f"cannot read the certificate {cert_file}") from e
    public = _public_from_token(session, key)
    if public is not None and not _same_key(certificate, public):
        raise KeyFileError(f"the certificate does not hold the public key of {uri.describe()}")
    if kind == "EC" and not isinstance(certificate.public_key(), ec.EllipticCurvePublicKey):
        raise KeyFileError(f"the certificate of {uri.describe()} is not for an EC key")
    if kind == "RSA" and not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise KeyFileError(f"the certificate of {uri.describe()} is not for an RSA key")
    signer = TokenSigner(session=session, key=key, algorithm=algorithm, mechanisms=mechanisms)
    return Credentials(key=signer, certificate=certificate)


# --------------------------------------------------------------------------------------------
# Provisioning (keys prescriber --key pkcs11:…)


@dataclass
class Provisioned:
    session: Any
    key: Any
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    created: bool


def provision(text: str, pin_file: Path | None = None) -> Provisioned:
    """The key pair the URI names, created on the token (EC P-256, sensitive, never
    extractable) when there is none; an RSA or P-256 key already there is used as it is."""
    pkcs11 = _pkcs11()
    uri = parse_uri(text)
    if uri.object is None:
        raise UsageError("name the key with object=LABEL in the pkcs11: URI")
    library = load_library(module_path(uri))
    token = find_token(library, uri)
    pin = read_pin(uri, pin_file, f"token {str(token.label).strip()!r}")
    session = open_session(token, pin, rw=True)
    key = find_private_key(session, uri, required=False)
    created = False
    if key is None:
        from pkcs11.util.ec import encode_named_curve_parameters

        Attribute = pkcs11.Attribute
        key_id = uri.id if uri.id is not None else os.urandom(8)
        try:
            parameters = session.create_domain_parameters(
                pkcs11.KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            _, key = parameters.generate_keypair(
                store=True,
                label=uri.object,
                id=key_id,
                public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                private_template={
                    Attribute.SIGN: True,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
        except pkcs11.exceptions.PKCS11Error as e:
            raise KeyFileError(f"the token could not create a key pair: {type(e).__name__}") from e
        created = True
    check_key_type(key, uri.describe())
    public = _public_from_token(session, key)
    if public is None:
        raise KeyFileError(f"no public key for {uri.describe()} on the token")
    return Provisioned(session=session, key=key, public_key=public, created=created)


def store_certificate(provisioned: Provisioned, certificate: x509.Certificate) -> None:
    """Write ``certificate`` on the token beside its key (same id and label), replacing the
    certificates already stored for that key."""
    pkcs11 = _pkcs11()
    from cryptography.hazmat.primitives import serialization

    Attribute = pkcs11.Attribute
    session = provisioned.session
    key_id, label = key_id_and_label(provisioned.key)
    try:
        for attributes in (
            {Attribute.ID: key_id} if key_id else None,
            {Attribute.LABEL: label} if label else None,
        ):
            if attributes is None:
                continue
            template = {Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE, **attributes}
            for old in list(session.get_objects(template)):
                old.destroy()
        template = {
            Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
            Attribute.SUBJECT: certificate.subject.public_bytes(),
            Attribute.ISSUER: certificate.issuer.public_bytes(),
            Attribute.SERIAL_NUMBER: _der_integer(certificate.serial_number),
        }
        if key_id:
            template[Attribute.ID] = key_id
        if label:
            template[Attribute.LABEL] = label
        session.create_object(template)
    except pkcs11.exceptions.PKCS11Error as e:
        raise KeyFileError(f"cannot write the certificate on the token: {type(e).__name__}") from e


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([0x02, len(body)]) + body
