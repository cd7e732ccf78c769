"""Name the first member of a tar (plain or gzip-compressed) from its first 4 KiB, for sniffing.

Cheap and bounded: only the bytes the registry already holds (:attr:`Source.head`)
are looked at; a gzip head is inflated to at most 64 KiB.  Header checksums are
verified; pax (``x``) and GNU long-name (``L``) headers are followed; a leading
directory member is skipped.  Nothing here opens the archive.
"""

from __future__ import annotations

import zlib

BLOCK = 512
GZIP_MAGIC = b"\x1f\x8b"
_INFLATE_MAX = 64 * 1024
_MAX_HEADERS = 8


def is_tar_block(block: bytes) -> bool:
    """True when ``block`` is a tar header with a valid checksum."""
    if len(block) < BLOCK:
        return False
    field = block[148:156].split(b"\x00", 1)[0].strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:BLOCK])
    signed = unsigned - 2 * sum(b for b in (*block[:148], *block[156:BLOCK]) if b > 127)
    return stored in (unsigned, signed)


def _gzip_body(head: bytes) -> int | None:
    """Where the deflate data of the gzip member starting ``head`` begins (after its optional fields)."""
    if len(head) < 10 or head[2] != 8:  # method 8: deflate, the only one gzip defines
        return None
    flags, pos = head[3], 10
    if flags & 4:  # FEXTRA
        pos += 2 + int.from_bytes(head[pos : pos + 2], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            end = head.find(b"\x00", pos)
            if end < 0:
                return None
            pos = end + 1
    if flags & 2:  # FHCRC
        pos += 2
    return pos if pos <= len(head) else None


def tar_bytes(head: bytes) -> bytes | None:
    """The leading bytes of the tar stream: ``head`` itself, or its gzip inflated; ``None`` if neither.

    The gzip trailer (CRC-32, length) is not looked at: a small file is all head, and
    the reader, which checks it, says what is wrong with it better than "not a trk".
    """
    if head.startswith(GZIP_MAGIC):
        body = _gzip_body(head)
        if body is None:
            return None
        try:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(head[body:], _INFLATE_MAX)
        except zlib.error:
            return None
    return head if is_tar_block(head[:BLOCK]) else None


def _pax_path(records: bytes) -> str | None:
    pos = 0
    while pos < len(records):
        space = records.find(b" ", pos)
        if space < 0:
            return None
        try:
            length = int(records[pos:space])
        except ValueError:
            return None
        if length <= 0:
            return None
        key, _, value = records[space + 1 : pos + length].rstrip(b"\n").partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "replace")
        pos += length
    return None


def first_member(head: bytes) -> str | None:
    """The name of the first non-directory member, ``""`` if ``head`` is not a tar, ``None`` if it cannot tell.

    The name is returned whatever the member's type (links included: the reader
    refuses those with a clear error, which is better than "no reader").
    """
    data = tar_bytes(head)
    if data is None:
        return ""
    offset = 0
    override: str | None = None
    for _ in range(_MAX_HEADERS):
        block = data[offset : offset + BLOCK]
        if len(block) < BLOCK:
            return None
        if not is_tar_block(block):
            return "" if offset == 0 else None
        name = block[:100].split(b"\x00", 1)[0]
        if block[257:263] == b"ustar\x00":  # POSIX ustar: a prefix field extends the name
            prefix = block[345:500].split(b"\x00", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        size_field = block[124:136]
        if size_field[:1] >= b"\x80":
            return None  # base-256 size: a huge member, never a trk header
        try:
            size = int(size_field.split(b"\x00", 1)[0].strip() or b"0", 8)
        except ValueError:
            return ""
        kind = block[156:157]
        data_start = offset + BLOCK
        offset = data_start + -(-size // BLOCK) * BLOCK
        if kind == b"x":
            records = data[data_start : data_start + size]
            if len(records) < size:
                return None
            override = _pax_path(records) or override
        elif kind == b"L":
            long_name = data[data_start : data_start + size]
            if len(long_name) < size:
                return None
            override = long_name.split(b"\x00", 1)[0].decode("utf-8", "replace")
        elif kind == b"g":
            continue
        elif kind == b"5" or (override or name.decode("utf-8", "replace")).endswith("/"):
            override = None
        else:
            return override or name.decode("utf-8", "replace")
    return None
