"""Turn any input a pharmacist has into verdicts: signed JSON, QR text, images and PDFs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from eprescrire import signing
from eprescrire.errors import InputError, Reason, VerificationError
from eprescrire.signing import Verdict
from eprescrire.trust import TrustStore

MAX_TEXT_BYTES = 1 << 20
_IMAGE_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"II*\x00",  # TIFF little-endian
    b"MM\x00*",  # TIFF big-endian
    b"BM",  # BMP
    b"%PDF",
    b"GIF8",
)


def _is_image(head: bytes) -> bool:
    if head.startswith(_IMAGE_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def verify_text(source: str, text: str, store: TrustStore, at: dt.datetime) -> Verdict:
    """Verify the text of a QR code (as a 2D scanner types it)."""
    from eprescrire import qr

    try:
        token = qr.decode(text.strip())
    except VerificationError as e:
        return signing.failed(source, e)
    return signing.verify_token(source, token, store, at)


def verify_bytes(source: str, data: bytes, store: TrustStore, at: dt.datetime) -> Verdict:
    """A signed JSON document or QR text, told apart by their first character."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        return signing.verify_document(source, data, store, at)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return signing.failed(
            source,
            VerificationError(Reason.NOT_A_PRESCRIPTION, "not an eprescrire document or code"),
        )
    return verify_text(source, text, store, at)


def verify_input(
    name: str,
    store: TrustStore,
    at: dt.datetime,
    *,
    engine: str = "zxing",
    stdin: BinaryIO | None = None,
) -> Iterator[Verdict]:
    """Verdicts for one command-line input (a file, or ``-`` for stdin); never raises for bad
    input. An image or PDF yields one verdict per code found."""
    if name == "-":
        if stdin is None:
            yield signing.failed(
                name, VerificationError(Reason.UNREADABLE_INPUT, "no standard input")
            )
            return
        data = stdin.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            yield signing.failed(name, VerificationError(Reason.MALFORMED, "input too large"))
            return
        if not data.strip():
            yield signing.failed(
                name, VerificationError(Reason.NO_CODE_FOUND, "standard input is empty")
            )
            return
        # A scanner may type several codes, one per line.
        if not data.lstrip().startswith(b"{") and b"\n" in data.strip():
            for number, line in enumerate(data.strip().splitlines(), start=1):
                if line.strip():
                    yield verify_bytes(f"-:{number}", line, store, at)
            return
        yield verify_bytes(name, data, store, at)
        return
    path = Path(name)
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        yield signing.failed(
            name, VerificationError(Reason.UNREADABLE_INPUT, f"{name}: no such file")
        )
        return
    except IsADirectoryError:
        yield signing.failed(
            name, VerificationError(Reason.UNREADABLE_INPUT, f"{name}: is a directory")
        )
        return
    except OSError as e:
        yield signing.failed(
            name, VerificationError(Reason.UNREADABLE_INPUT, f"{name}: {e.strerror}")
        )
        return
    if _is_image(head):
        yield from _verify_image(path, store, at, engine)
        return
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise InputError(f"{name}: too large for a prescription")
        data = path.read_bytes()
    except (OSError, InputError) as e:
        yield signing.failed(name, VerificationError(Reason.UNREADABLE_INPUT, str(e)))
        return
    yield verify_bytes(name, data, store, at)


def _verify_image(path: Path, store: TrustStore, at: dt.datetime, engine: str) -> Iterator[Verdict]:
    from eprescrire import scan

    name = str(path)
    try:
        texts = scan.read_codes(path, engine=engine)
    except InputError as e:
        yield signing.failed(name, VerificationError(Reason.UNREADABLE_INPUT, str(e)))
        return
    if not texts:
        yield signing.failed(
            name, VerificationError(Reason.NO_CODE_FOUND, f"{name}: no QR code found")
        )
        return
    for number, text in enumerate(texts, start=1):
        source = name if len(texts) == 1 else f"{name}#{number}"
        yield verify_text(source, text, store, at)
