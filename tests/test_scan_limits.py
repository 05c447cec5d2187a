"""Bounded work per input: frames, pages, page size, pixels, and pipes with a time box.

The attack files are made here (small on disk): a TIFF of 32 blank 9000×9000 frames, a PDF of
32 pages of 14400 pt, a FIFO with no writer.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from eprescrire import scan
from eprescrire.errors import InputError

AT = "2026-11-25T12:00:00+01:00"


def _tiff(path: Path, frames: int, side: int) -> Path:
    """A multi-page TIFF of ``frames`` blank side×side CCITT G4 frames, made by encoding one
    frame with Pillow and chaining as many IFDs to its strips (Pillow would encode each frame
    again: seconds per 9000×9000 frame)."""
    import io
    import struct

    from PIL import Image

    one = io.BytesIO()
    Image.new("1", (side, side), 1).save(one, format="TIFF", compression="group4")
    with Image.open(one) as image:
        tags = dict(image.tag_v2)
    data = one.getvalue()
    strips = b"".join(data[o : o + c] for o, c in zip(tags[273], tags[279], strict=True))
    counts = list(tags[279])
    out = bytearray(b"II*\x00" + struct.pack("<I", 0))
    strip_at = len(out)
    out += strips
    offsets = [strip_at + sum(counts[:i]) for i in range(len(counts))]
    array_at = len(out)
    out += struct.pack(f"<{len(counts)}I", *offsets) + struct.pack(f"<{len(counts)}I", *counts)

    def value(values: list[int], at: int) -> tuple[int, int]:
        return (1, values[0]) if len(values) == 1 else (len(values), at)

    previous = 4  # where the offset of the next IFD goes
    for _ in range(frames):
        if len(out) % 2:
            out += b"\x00"
        entries = [
            (256, 4, 1, side),  # ImageWidth
            (257, 4, 1, side),  # ImageLength
            (258, 3, 1, 1),  # BitsPerSample
            (259, 3, 1, 4),  # Compression: CCITT G4
            (262, 3, 1, tags.get(262, 0)),  # PhotometricInterpretation
            (273, 4, *value(offsets, array_at)),  # StripOffsets
            (277, 3, 1, 1),  # SamplesPerPixel
            (278, 4, 1, tags.get(278, side)),  # RowsPerStrip
            (279, 4, *value(counts, array_at + 4 * len(counts))),  # StripByteCounts
        ]
        struct.pack_into("<I", out, previous, len(out))
        out += struct.pack("<H", len(entries))
        for tag, kind, count, content in entries:
            packed = (
                struct.pack("<H", content) + b"\x00\x00"
                if kind == 3
                else struct.pack("<I", content)
            )
            out += struct.pack("<HHI", tag, kind, count) + packed
        previous = len(out)
        out += struct.pack("<I", 0)
    path.write_bytes(bytes(out))
    return path


def _pdf(path: Path, pages: int, points: float) -> Path:
    # A minimal PDF by hand: one shared empty content stream, `pages` pages of points×points.
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{4 + i} 0 R".encode() for i in range(pages))
        + f"] /Count {pages} >>".encode(),
        b"<< /Length 0 >>\nstream\n\nendstream",
    ]
    objects += [
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {points} {points}] /Contents 3 0 R >>".encode()
        for _ in range(pages)
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(bytes(out))
    return path


def _refused(run_cli, path: Path, *extra: str) -> dict:
    started = time.monotonic()
    result = run_cli(
        "verify", path, "--trust", Path("keys/demo-trust").resolve(), "--at", AT, "--json", *extra
    )
    elapsed = time.monotonic() - started
    assert result.code == 3, result
    (verdict,) = result.json_lines()
    assert [r["code"] for r in verdict["reasons"]] == ["unreadable_input"], verdict
    verdict["elapsed"] = elapsed
    return verdict


def test_a_tiff_of_32_huge_frames_is_refused(tmp_path: Path, run_cli) -> None:
    path = _tiff(tmp_path / "bomb.tiff", 32, 9000)
    assert path.stat().st_size < 4 * 1024 * 1024  # small on disk
    verdict = _refused(run_cli, path)
    assert "too large" in verdict["reasons"][0]["message"]


def test_a_tiff_with_more_frames_than_allowed_is_refused(tmp_path: Path, run_cli) -> None:
    path = _tiff(tmp_path / "many.tiff", scan.MAX_FRAMES + 1, 64)
    verdict = _refused(run_cli, path)
    assert "frames" in verdict["reasons"][0]["message"]


def test_total_pixels_per_input_are_capped(tmp_path: Path, monkeypatch) -> None:
    path = _tiff(tmp_path / "heavy.tiff", 6, 1000)  # 1 Mpx per frame, searched 4 times
    monkeypatch.setattr(scan, "MAX_INPUT_PIXELS", 5_000_000)
    with pytest.raises(InputError, match="too much to read"):
        scan.read_codes(path)
    monkeypatch.setattr(scan, "MAX_INPUT_PIXELS", 50_000_000)
    assert scan.read_codes(path) == []


def test_a_pdf_of_32_pages_of_14400_pt_is_refused(tmp_path: Path, run_cli) -> None:
    path = _pdf(tmp_path / "huge.pdf", 32, 14400)
    assert path.stat().st_size < 16 * 1024
    verdict = _refused(run_cli, path)
    assert "pages" in verdict["reasons"][0]["message"]


def test_a_pdf_page_of_14400_pt_is_refused(tmp_path: Path, run_cli) -> None:
    verdict = _refused(run_cli, _pdf(tmp_path / "huge.pdf", 1, 14400))
    assert "cm" in verdict["reasons"][0]["message"]


def test_pdf_pixels_are_capped_across_pages(tmp_path: Path, monkeypatch) -> None:
    path = _pdf(tmp_path / "a4.pdf", 8, 595)
    monkeypatch.setattr(scan, "MAX_INPUT_PIXELS", 20_000_000)
    with pytest.raises(InputError, match="too much to read"):
        scan.read_codes(path)


@pytest.fixture()
def fifo(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "scan.fifo"
    os.mkfifo(path)
    monkeypatch.setattr(scan, "PIPE_IDLE_SECONDS", 0.5)
    return path


def test_a_fifo_with_no_writer_does_not_block(fifo: Path, run_cli) -> None:
    verdict = _refused(run_cli, fifo)
    assert "no writer" in verdict["reasons"][0]["message"]
    assert verdict["elapsed"] < 5


def test_a_fifo_with_a_writer_is_read(fifo: Path, run_cli) -> None:
    def write() -> None:
        with open(fifo, "wb") as handle:
            handle.write(b"RX1:NOT-A-REAL-CODE")

    writer = threading.Thread(target=write)
    writer.start()
    result = run_cli("verify", fifo, "--trust", Path("keys/demo-trust").resolve(), "--json")
    writer.join(5)
    (verdict,) = result.json_lines()
    assert [r["code"] for r in verdict["reasons"]] == ["malformed"], verdict


def test_a_slow_pipe_is_cut_at_the_total_time(fifo: Path, monkeypatch) -> None:
    monkeypatch.setattr(scan, "PIPE_TOTAL_SECONDS", 0.8)
    stop = threading.Event()

    def trickle() -> None:
        try:
            with open(fifo, "wb", buffering=0) as handle:
                while not stop.is_set():
                    handle.write(b"x")
                    time.sleep(0.1)
        except BrokenPipeError:  # the reader gave up, as it should
            pass

    writer = threading.Thread(target=trickle)
    writer.start()
    try:
        with pytest.raises(InputError, match="longer than"):
            scan.open_input(fifo, lambda head: 1 << 20)
    finally:
        stop.set()
        writer.join(5)
