"""Strict JSON for untrusted files: size and depth caps, finite numbers, no duplicate keys.

``json.loads`` accepts NaN, Infinity, 1e400, duplicate keys (the last wins) and
recurses without bound; :func:`load_json` refuses all of these with a
:class:`~dlformats.errors.CorruptFileError` naming the file and member.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import CorruptFileError
from ..limits import DEFAULT_LIMITS, Limits

_INT_KEY = re.compile(r"-?[0-9]+\Z")


class _RejectedError(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _RejectedError(f"non-finite number {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RejectedError(f"number {text} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RejectedError(f"duplicate key {key!r}")
        out[key] = value
    return out


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


def _nesting(data: bytes, limit: int) -> int:
    """How deeply ``data`` nests arrays and objects, read on the bytes before parsing (0 when
    it cannot exceed ``limit``).

    Only brackets and quotes matter: escaped quotes and backslashes are dropped first,
    brackets inside strings are masked by the parity of the quotes before them, and the
    depth is the running sum of openers minus closers.  UTF-8 never puts these ASCII
    bytes inside a multi-byte character.  On a document that is not valid JSON the
    answer is meaningless, but harmless: the parser refuses such a document anyway.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0
    import numpy as np

    if b"\\" in data:  # a backslash escapes the next byte: pairs first, then escaped quotes
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = np.frombuffer(data.translate(None, _NOT_STRUCTURE), np.uint8)
    step = ((skeleton == ord("[")) | (skeleton == ord("{"))).astype(np.int32)
    step -= (skeleton == ord("]")) | (skeleton == ord("}"))
    quotes = skeleton == ord('"')
    if quotes.any():
        step[(np.cumsum(quotes, dtype=np.int32) & 1).astype(bool)] = 0
    return int(np.cumsum(step, dtype=np.int32).max()) if len(step) else 0


def load_json(
    data: bytes | str,
    *,
    path: str | None = None,
    member: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Parse untrusted JSON; raise ``CorruptFileError`` or ``LimitExceededError`` on anything doubtful."""
    limits.check("json_bytes", len(data), "JSON document too large", path=path, member=member)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _nesting(raw, limits.json_depth) > limits.json_depth:
        raise CorruptFileError(f"JSON nested deeper than {limits.json_depth} levels", path=path, member=member)
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"JSON is not UTF-8: {exc}", path=path, member=member) from exc
    else:
        text = data
    try:
        obj = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError as exc:
        raise CorruptFileError("JSON nested too deeply", path=path, member=member) from exc
    except (ValueError, _RejectedError) as exc:
        raise CorruptFileError(f"invalid JSON: {exc}", path=path, member=member) from exc
    return obj


def _int_key(key: str, *, what: str = "key", path: str | None = None, member: str | None = None) -> int:
    """Return ``int(key)`` for a key of plain ASCII digits (optional ``-``); else raise ``CorruptFileError``."""
    if not isinstance(key, str) or not _INT_KEY.match(key):
        raise CorruptFileError(f"{what} {key!r} is not a plain integer", path=path, member=member)
    return int(key)


def dump_json(obj: Any) -> bytes:
    """Serialise to compact UTF-8 JSON; numpy scalars become Python numbers; non-finite floats are refused."""

    def default(value: Any) -> Any:
        # tolist() first: numpy arrays have item() too, but it works only for one element.
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return tolist()
        item = getattr(value, "item", None)
        if callable(item):
            return item()
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    return json.dumps(obj, default=default, allow_nan=False, ensure_ascii=False).encode("utf-8")


__all__ = ["dump_json", "load_json"]
