"""Zarr stores on disk, read without trusting them: metadata documents checked before zarr opens anything.

Every array is checked from its own metadata document (``.zarray`` or ``zarr.json``) first: its data type
and codecs must come from an allowlist (so nothing is ever unpickled: numcodecs' ``pickle`` and object
codecs are refused), its declared size and its chunks must fit :class:`~dlformats.Limits`. Paths inside a
store are plain names; a related object's relative path must stay inside the store.
"""

from __future__ import annotations

import math
import posixpath
from pathlib import Path
from typing import Any

from dlformats import CorruptFileError, Limits, UnsafeArchiveError, UnsupportedFeatureError
from dlformats.containers.jsonio import load_json

GEFF_KEY = "geff"
MAX_UP = 8
"""How many folders above a geff group are searched for the store holding it."""

CODECS = frozenset(
    {
        # zarr v2 compressors and filters (numcodecs ids), and their zarr v3 names
        "blosc",
        "zstd",
        "zlib",
        "gzip",
        "bz2",
        "lz4",
        "lzma",
        "crc32",
        "crc32c",
        "adler32",
        "shuffle",
        "delta",
        "vlen-utf8",
        "vlen-bytes",
        "bytes",
        "transpose",
        "sharding_indexed",
    }
)
V2_KINDS = frozenset("biufUS")
V3_TYPES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "string",
        "fixed_length_utf32",
        "fixed_length_ascii",
        "null_terminated_bytes",
    }
)
_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2}


def read_json(path: Path, limits: Limits, *, what: str) -> Any:
    """Load a small JSON document of a store (``None`` when absent)."""
    try:
        if not path.is_file():
            return None
        limits.check("json_bytes", path.stat().st_size, f"{what} too large", path=str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptFileError(f"cannot read {what}: {exc.strerror or exc}", path=str(path)) from exc
    return load_json(data, path=str(path), limits=limits)


def node_type(folder: Path, limits: Limits) -> str | None:
    """``"group"``, ``"array"`` or ``None`` for a folder of a zarr store (v3 ``zarr.json`` or v2 files)."""
    doc = read_json(folder / "zarr.json", limits, what="zarr.json")
    if isinstance(doc, dict) and doc.get("node_type") in ("group", "array"):
        return str(doc["node_type"])
    if (folder / ".zgroup").is_file():
        return "group"
    if (folder / ".zarray").is_file():
        return "array"
    return None


def attributes(folder: Path, limits: Limits) -> dict[str, Any]:
    """The attributes of the zarr group (or array) in ``folder`` (``{}`` when it has none)."""
    doc = read_json(folder / "zarr.json", limits, what="zarr.json")
    if isinstance(doc, dict) and "node_type" in doc:
        attrs = doc.get("attributes", {})
    else:
        attrs = read_json(folder / ".zattrs", limits, what=".zattrs")
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise CorruptFileError("the group's attributes are not a JSON object", path=str(folder))
    return attrs


def _has_geff(folder: Path, limits: Limits, *, child: bool = False) -> bool:
    """True when ``folder``'s attributes hold the geff key.

    Broken metadata of the folder itself still claims a zarr group (the reader says what is
    wrong); a child with broken metadata is not claimed (it may be another format's group,
    e.g. the labels of an OME-Zarr store, whose reader names the problem).
    """
    try:
        return GEFF_KEY in attributes(folder, limits)
    except CorruptFileError:
        if child:
            return False
        try:
            return node_type(folder, limits) == "group"
        except CorruptFileError:
            return False


def find_geff_groups(folder: Path, limits: Limits) -> list[str]:
    """Paths (``""`` for ``folder`` itself) of geff groups at ``folder`` or among its children."""
    if not folder.is_dir():
        return []
    if (folder / ".zattrs").is_file() or (folder / "zarr.json").is_file():
        if _has_geff(folder, limits):
            return [""]
    if not ((folder / "zarr.json").is_file() or (folder / ".zgroup").is_file()):
        return []  # a plain folder holding a .geff is not itself a geff: only a zarr store's child groups count
    found = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    for child in children[:1000]:
        if ((child / ".zattrs").is_file() or (child / "zarr.json").is_file()) and _has_geff(child, limits, child=True):
            found.append(child.name)
    return found


def store_root(group: Path, limits: Limits) -> tuple[Path, str]:
    """The outermost zarr group folder holding ``group`` (within :data:`MAX_UP` levels), and the group's path in it."""
    root = group
    for _ in range(MAX_UP):
        parent = root.parent
        if parent == root or node_type(parent, limits) != "group":
            break
        root = parent
    return root, group.relative_to(root).as_posix() if root != group else ""


def inside(base: str, relative: str, *, path: str) -> str:
    """``relative`` resolved against the group path ``base`` of a store; refused when it leaves the store."""
    if not isinstance(relative, str) or not relative:
        raise CorruptFileError(f"a related object's path must be a non-empty string, not {relative!r:.40}", path=path)
    if relative.startswith("/") or "\\" in relative:
        raise UnsafeArchiveError(f"the path {relative!r} is not a relative path inside the store", path=path)
    joined = posixpath.normpath(posixpath.join(base, relative)) if base else posixpath.normpath(relative)
    if joined == ".." or joined.startswith("../") or joined == ".":
        raise UnsafeArchiveError(f"the path {relative!r} leaves the zarr store", path=path)
    return joined


def check_name(name: str, *, path: str, what: str) -> None:
    """A property name becomes a folder name: plain, no separators, no dot names."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise UnsafeArchiveError(f"{what} name {name!r} is not a plain name", path=path)


def check_array(root: Path, rel: str, limits: Limits, *, whole: bool) -> dict[str, Any]:
    """Check the array at ``rel`` in the store ``root`` from its metadata alone; return its facts.

    Facts: ``shape``, ``chunks`` (the unit read at once), ``format`` (2 or 3). ``whole`` means the caller
    reads the whole array into memory: its declared size must fit ``limits.array_bytes``; otherwise one
    chunk must, and the whole array ``limits.total_bytes``.
    """
    folder = root / rel if rel else root
    where = str(folder)
    v3 = read_json(folder / "zarr.json", limits, what="zarr.json")
    if isinstance(v3, dict) and v3.get("node_type") == "array":
        shape, chunks, itemsize = _v3_facts(v3, where)
        fmt = 3
    else:
        v2 = read_json(folder / ".zarray", limits, what=".zarray")
        if not isinstance(v2, dict):
            raise CorruptFileError("missing array (no .zarray or zarr.json)", path=where)
        shape, chunks, itemsize = _v2_facts(v2, where)
        fmt = 2
    if len(chunks) != len(shape) or any(c <= 0 for c in chunks) or any(s < 0 for s in shape):
        raise CorruptFileError(f"array of shape {shape} declares chunks {chunks}", path=where)
    chunk_bytes = math.prod(chunks) * itemsize
    total = math.prod(shape) * itemsize
    limits.check("array_bytes", chunk_bytes, "zarr chunk too large", path=where)
    if whole:
        limits.check("array_bytes", total, "zarr array too large to read into memory", path=where)
    limits.check("total_bytes", total, "zarr array too large", path=where)
    return {"shape": shape, "chunks": chunks, "format": fmt}


def _ints(value: Any, what: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CorruptFileError(f"{what} must be a list of integers, not {value!r:.60}", path=where)
    return tuple(value)


def _v2_facts(doc: dict[str, Any], where: str) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    import numpy as np

    dtype = doc.get("dtype")
    if not isinstance(dtype, str):
        raise UnsupportedFeatureError(f"zarr dtype {dtype!r:.60} (structured or missing) is not supported", path=where)
    codecs = [c for c in [doc.get("compressor"), *(doc.get("filters") or [])] if c is not None]
    ids = [c.get("id") if isinstance(c, dict) else c for c in codecs]
    _check_codecs(ids, where)
    if dtype == "|O":
        if not set(ids) & {"vlen-utf8", "vlen-bytes"}:
            raise UnsupportedFeatureError("object arrays are read only as vlen-utf8 or vlen-bytes strings", path=where)
        itemsize = 8
    else:
        try:
            parsed = np.dtype(dtype)
        except TypeError as exc:
            raise UnsupportedFeatureError(f"zarr dtype {dtype!r:.60} is not supported", path=where) from exc
        if parsed.kind not in V2_KINDS:
            raise UnsupportedFeatureError(f"zarr dtype {dtype!r:.60} is not supported", path=where)
        itemsize = max(parsed.itemsize, 1)
    return _ints(doc.get("shape"), "shape", where), _ints(doc.get("chunks"), "chunks", where), itemsize


def _v3_facts(doc: dict[str, Any], where: str) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    data_type = doc.get("data_type")
    name = data_type.get("name") if isinstance(data_type, dict) else data_type
    if name not in V3_TYPES:
        raise UnsupportedFeatureError(f"zarr data type {name!r:.60} is not supported", path=where)
    config = data_type.get("configuration", {}) if isinstance(data_type, dict) else {}
    if name.startswith(("int", "uint", "float")):
        itemsize = int(name.removeprefix("u").removeprefix("int").removeprefix("float")) // 8
    elif name in ("fixed_length_utf32", "fixed_length_ascii", "null_terminated_bytes"):
        itemsize = int(config.get("length_bytes", 1)) if isinstance(config, dict) else 1
    else:
        itemsize = _ITEMSIZE.get(name, 8)
    grid = doc.get("chunk_grid")
    if not isinstance(grid, dict) or grid.get("name") != "regular":
        raise UnsupportedFeatureError(f"zarr chunk grid {grid!r:.60} is not supported", path=where)
    chunks = _ints((grid.get("configuration") or {}).get("chunk_shape"), "chunk_shape", where)
    codecs = doc.get("codecs")
    if not isinstance(codecs, list):
        raise CorruptFileError("zarr.json: codecs must be a list", path=where)
    for codec in codecs:
        if isinstance(codec, dict) and codec.get("name") == "sharding_indexed":
            config = codec.get("configuration") or {}
            inner = _ints(config.get("chunk_shape"), "the shards' chunk_shape", where)
            _check_codecs(_names(config.get("codecs")) + _names(config.get("index_codecs")), where)
            chunks = inner  # one inner chunk is what a read decodes at once
    _check_codecs(_names(codecs), where)
    return _ints(doc.get("shape"), "shape", where), chunks, max(itemsize, 1)


def _names(codecs: Any) -> list[Any]:
    if codecs is None:
        return []
    if not isinstance(codecs, list):
        return [codecs]
    return [c.get("name") if isinstance(c, dict) else c for c in codecs]


def _check_codecs(ids: list[Any], where: str) -> None:
    for codec in ids:
        name = codec.removeprefix("numcodecs.") if isinstance(codec, str) else codec
        if name not in CODECS:
            raise UnsupportedFeatureError(
                f"zarr codec {codec!r:.60} is not supported (dlformats never unpickles, and reads only "
                f"the common compressors: {', '.join(sorted(CODECS))})",
                path=where,
            )


def open_store(root: Path) -> Any:
    """A read-only zarr store over the folder ``root``."""
    from zarr.storage import LocalStore

    return LocalStore(root, read_only=True)
