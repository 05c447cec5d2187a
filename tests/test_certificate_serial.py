"""A certificate carried in a signed file or a ledger record whose serial number is zero or
negative (RFC 5280 §4.1.2.2 forbids both) is refused when it is read, not loaded with a warning."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eprescrire import keys

ROOT = Path(__file__).resolve().parent.parent


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return bytes([0x02, len(body)]) + body


def _with_serial_content(der: bytes, serial: int, first: int) -> bytes:
    encoded = _der_integer(serial)
    assert der.count(encoded) == 1
    at = der.index(encoded) + 2
    return der[:at] + bytes([first]) + der[at + 1 :]


def _prescriber_der() -> tuple[bytes, int]:
    certificate = x509.load_pem_x509_certificate((ROOT / "keys/demo-prescriber.pem").read_bytes())
    return certificate.public_bytes(serialization.Encoding.DER), certificate.serial_number


def test_a_certificate_as_issued_is_read() -> None:
    der, serial = _prescriber_der()
    read = keys.certificate_from_base64(base64.b64encode(der).decode("ascii"))
    assert read.serial_number == serial


def _negative_serial_base64() -> str:
    der, serial = _prescriber_der()
    # The serial's first byte with its sign bit set: the same length, a negative number.
    return base64.b64encode(_with_serial_content(der, serial, 0x80)).decode("ascii")


@pytest.mark.filterwarnings("error::cryptography.utils.CryptographyDeprecationWarning")
def test_a_negative_serial_number_is_refused_where_cryptography_warns() -> None:
    # As in the CLI, where keys.py turns cryptography's warning into an error.
    with pytest.raises(ValueError, match="RFC 5280"):
        keys.certificate_from_base64(_negative_serial_base64())


def test_a_negative_serial_number_is_refused_with_warnings_ignored() -> None:
    # A caller that reset the warning filters: the serial number is checked after loading.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="serial number is not positive"):
            keys.certificate_from_base64(_negative_serial_base64())


def test_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="not base64"):
        keys.certificate_from_base64("not*base64")
