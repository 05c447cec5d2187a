#!/usr/bin/env python3
"""Regenerate the bad-input scan assets of tests/test_scan.py (one file per failure mode).

    .venv/bin/python tests/assets/scan/make_assets.py

- bomb-40000x40000.png   a valid PNG whose header claims 40000×40000 pixels (1.6 Gpx) with a
                         tiny IDAT: Pillow must refuse it before allocating anything.
- truncated.png          a QR code PNG cut in the middle of its image data.
- corrupt-body.png       the PNG signature followed by bytes that are no PNG chunk.
- not-an-image.png       plain text saved with an image extension.
- no-code.png            a blank 150 dpi A4 page with a line of text and no code.
- url-code.png           a foreign QR code: https://example.org/ordonnance.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    # 8-bit grayscale; IDAT holds one compressed row: enough for a parser, not for a decoder.
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" + b"\xff" * 64))
        + _chunk(b"IEND", b"")
    )


def main() -> None:
    import segno
    from PIL import Image, ImageDraw

    (HERE / "bomb-40000x40000.png").write_bytes(bomb_png())

    buffer = io.BytesIO()
    segno.make("EPRESCRIRE TRUNCATED SCAN TEST 0123456789", error="m").save(
        buffer, kind="png", scale=4
    )
    data = buffer.getvalue()
    (HERE / "truncated.png").write_bytes(data[: len(data) // 2])

    (HERE / "corrupt-body.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not a chunk" * 8)
    (HERE / "not-an-image.png").write_bytes(b"Ordonnance du 12/03: voir le dossier papier.\n")

    page = Image.new("L", (1240, 1754), 255)
    ImageDraw.Draw(page).text((100, 100), "Ordonnance sans code", fill=0)
    page.save(HERE / "no-code.png", optimize=True)

    segno.make("https://example.org/ordonnance", error="m", micro=False).save(
        HERE / "url-code.png", scale=6
    )


if __name__ == "__main__":
    main()
