"""Turn any input a pharmacist has into verdicts: signed JSON, QR text, images and PDFs."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from eprescrire import signing
from eprescrire.errors import InputError, Reason, VerificationError
from eprescrire.trust import TrustStore
from eprescrire.verdict import Verdict

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
    from eprescrire.qr import decode_signed  # a module: no importlib code runs once loaded

    try:
        decoded = decode_signed(text.strip())
    except VerificationError as e:
        return signing.failed(source, e)
    return signing.verify_decoded(
        source,
        alg=decoded.alg,
        kid=decoded.kid,
        signature=decoded.signature,
        form=decoded.form,
        store=store,
        at=at,
    )


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
        yield from _verify_text_input(name, stdin.read(MAX_TEXT_BYTES + 1), store, at)
        return
    path = Path(name)
    from eprescrire import scan

    try:
        # A regular file is read below, by path, only as far as its kind needs. A pipe or a
        # device can be read once only, has no size and may have no writer: it is read now,
        # bounded by what the kind of input needs and in a time box (never blocks).
        regular, head, data = scan.open_input(
            path, lambda start: scan_limit() if _is_image(start) else MAX_TEXT_BYTES
        )
        info = os.stat(path) if regular else None
    except InputError as e:
        yield _unreadable(name, str(e))
        return
    except FileNotFoundError:
        yield _unreadable(name, f"{name}: no such file")
        return
    except IsADirectoryError:
        yield _unreadable(name, f"{name}: is a directory")
        return
    except OSError as e:
        yield _unreadable(name, f"{name}: {e.strerror or e.__class__.__name__}")
        return
    if _is_image(head):
        yield from _verify_image(path, store, at, engine, data)
        return
    if regular:
        assert info is not None
        if info.st_size > MAX_TEXT_BYTES:
            yield _unreadable(name, f"{name}: too large for a prescription")
            return
        try:
            data = path.read_bytes()
        except OSError as e:
            yield _unreadable(name, f"{name}: {e.strerror or e.__class__.__name__}")
            return
    assert data is not None
    yield from _verify_text_input(name, data, store, at)


def scan_limit() -> int:
    from eprescrire import scan

    return scan.MAX_FILE_BYTES


def _unreadable(name: str, message: str) -> Verdict:
    return signing.failed(name, VerificationError(Reason.UNREADABLE_INPUT, message))


def _verify_text_input(
    name: str, data: bytes, store: TrustStore, at: dt.datetime
) -> Iterator[Verdict]:
    """A signed JSON document, or QR text: one code, or several one per line (a USB scanner
    ends each code with CR, LF or both)."""
    if len(data) > MAX_TEXT_BYTES:
        yield _unreadable(name, f"{name}: too large for a prescription")
        return
    if not data.strip():
        yield signing.failed(name, VerificationError(Reason.NO_CODE_FOUND, f"{name}: empty input"))
        return
    if _is_issue_input(name, data):
        # A TOML or CSV prescription input (examples/reference.toml): one clear line, rather
        # than one verdict per line of it as if each were a QR code.
        yield signing.failed(
            name,
            VerificationError(
                Reason.NOT_A_PRESCRIPTION,
                f"{name}: a prescription input for `eprescrire issue`, not a signed prescription",
            ),
        )
        return
    if not data.lstrip().startswith(b"{"):
        lines = [line for line in data.strip().splitlines() if line.strip()]
        if len(lines) > 1:
            for number, line in enumerate(lines, start=1):
                yield verify_bytes(f"{name}:{number}", line, store, at)
            return
    yield verify_bytes(name, data, store, at)


_TOML_LINE = re.compile(rb"^\s*(\[\[?[A-Za-z_][A-Za-z0-9_.]*\]\]?|[A-Za-z_][A-Za-z0-9_]*\s*=)")


def _is_issue_input(name: str, data: bytes) -> bool:
    """A prescription input file (TOML or CSV for ``issue``), never QR text: by its name, or by
    a first line that is a TOML table or key (QR text never holds ``[`` or ``=``)."""
    if name != "-" and Path(name).suffix.lower() in (".toml", ".csv"):
        return True
    first = next((line for line in data.splitlines() if line.strip()), b"")
    return bool(_TOML_LINE.match(first))


def _verify_image(
    path: Path, store: TrustStore, at: dt.datetime, engine: str, data: bytes | None = None
) -> Iterator[Verdict]:
    from eprescrire import scan

    name = str(path)
    try:
        texts = scan.read_codes(path, engine=engine, data=data)
    except InputError as e:
        yield signing.failed(name, VerificationError(Reason.UNREADABLE_INPUT, str(e)))
        return
    if not texts:
        yield signing.failed(
            name, VerificationError(Reason.NO_CODE_FOUND, f"{name}: no QR code found")
        )
        return
    verdicts = [
        verify_text(name if len(texts) == 1 else f"{name}#{number}", text, store, at)
        for number, text in enumerate(texts, start=1)
    ]
    # Other codes on the same page (a clinic's web address, a pharmacy loyalty code) are not
    # ours: when the page holds a prescription code, they are set aside rather than failing it.
    ours = [v for v in verdicts if not _foreign(v)]
    if ours and len(ours) < len(verdicts):
        ours[0].warnings.append(
            f"{len(verdicts) - len(ours)} other QR code(s) on the page are not prescriptions; "
            "ignored"
        )
        verdicts = ours
    yield from verdicts


def _foreign(verdict: Verdict) -> bool:
    return [r.code for r in verdict.reasons] == [Reason.NOT_A_PRESCRIPTION]
