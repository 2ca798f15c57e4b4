"""What a dropped file is before it is parsed: identity, encoding, delimiter.

One streaming pass hashes the file (its identity) and checks which codec decodes it, line by line,
so that a UTF-8 export with one damaged row is read as UTF-8 (and that row reported) instead of
being decoded as cp1252 and turning every accent into mojibake.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from connector.sources.safe_files import open_regular

__all__ = ["FileFacts", "inspect_file", "sniff_delimiter"]

_CHUNK = 1 << 18
_CANDIDATES = ("utf-8", "cp1252")
_DELIMITERS = (";", ",", "\t", "|")


@dataclass(frozen=True)
class FileFacts:
    """Everything learned from the bytes of a file before parsing it."""

    size: int
    sha256: str
    encoding: str
    """Codec to open the file with (``utf-8-sig`` when a BOM is present)."""
    damaged_lines: int
    """Lines that do not decode with :attr:`encoding` (reported row by row)."""
    lines: int
    ends_with_newline: bool
    binary: bool
    """NUL bytes without a UTF-16 BOM: a spreadsheet or archive, not a text export."""
    nul_line: int | None = None
    """First line holding a NUL byte anywhere in the file (not UTF-16); such a file is refused."""

    @property
    def identity(self) -> str:
        """Size and content hash; with the file name, what makes a re-drop "the same file"."""
        return f"{self.size}:{self.sha256[:32]}"


class _CodecCheck:
    """Counts the lines a codec fails on, and the non-ASCII lines it decodes (evidence for it)."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.bad = 0
        self.evidence = 0

    def feed(self, block: bytes) -> None:
        if block.isascii():
            return
        try:
            block.decode(self.codec)
            self.evidence += block.count(b"\n") or 1
            return
        except UnicodeDecodeError:
            pass
        for line in block.split(b"\n"):
            if line.isascii():
                continue
            try:
                line.decode(self.codec)
                self.evidence += 1
            except UnicodeDecodeError:
                self.bad += 1


def inspect_file(path: Path, encoding: str = "auto") -> FileFacts:
    """Hash the file and pick the codec, in one bounded-memory pass."""
    sha = hashlib.sha256()
    size = 0
    lines = 0
    head = b""
    last = b""
    leftover = b""
    checks = [_CodecCheck(c) for c in (_CANDIDATES if encoding == "auto" else (encoding,))]
    nul_line: int | None = None
    with open_regular(path) as fh:
        while chunk := fh.read(_CHUNK):
            if nul_line is None and (nul := chunk.find(b"\x00")) >= 0:
                nul_line = lines + chunk.count(b"\n", 0, nul) + 1
            sha.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            if not head:
                head = chunk[:65536]
            last = chunk[-1:]
            block = leftover + chunk
            cut = block.rfind(b"\n") + 1
            block, leftover = block[:cut], block[cut:]
            for check in checks:
                check.feed(block)
    for check in checks:
        check.feed(leftover)
    ends_with_newline = last in (b"\n", b"\r")
    lines += 0 if ends_with_newline or size == 0 else 1
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    binary = not utf16 and b"\x00" in head[:8192]
    chosen, damaged = _choose(encoding, checks, head, utf16)
    return FileFacts(size=size, sha256=sha.hexdigest(), encoding=chosen, damaged_lines=damaged,
                     lines=lines, ends_with_newline=ends_with_newline, binary=binary,
                     nul_line=None if utf16 else nul_line)


def _choose(encoding: str, checks: list[_CodecCheck], head: bytes, utf16: bool) -> tuple[str, int]:
    if utf16:
        return "utf-16", 0
    bom = head.startswith(codecs.BOM_UTF8)
    if encoding != "auto":
        codec = "utf-8-sig" if bom and codecs.lookup(encoding).name == "utf-8" else encoding
        return codec, checks[0].bad
    utf8, cp1252 = checks
    # A BOM, or more well-formed accented lines than broken ones, means "UTF-8 with damaged rows".
    if bom or utf8.bad == 0 or utf8.evidence > utf8.bad:
        return ("utf-8-sig" if bom else "utf-8"), utf8.bad
    if cp1252.bad == 0:
        return "cp1252", 0
    # Not cp1252 either: a DOS code page (cp850) or another legacy one; guess on the head only when
    # the guess is confident, else latin-1, which decodes every byte and keeps the accents.
    best = charset_normalizer.from_bytes(head).best()
    if best is not None and best.encoding not in ("utf_8", "ascii") and best.chaos < 0.1 \
            and best.coherence > 0.2:
        return best.encoding, 0
    return "latin-1", 0


def sniff_delimiter(header: str) -> str:
    """The separator used most often in the header, outside quotes (``,`` when none is used)."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","
