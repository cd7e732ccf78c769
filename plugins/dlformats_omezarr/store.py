"""A guarded view of an OME-Zarr folder: bounded metadata, checked array declarations, safe chunk reads.

Every file of the store is read through :class:`StoreReader`:

* a key must stay inside the store: ``..``, absolute keys and symbolic links whose target
  lies outside the store's folder are refused (:class:`~dlformats.errors.UnsafeArchiveError`);
* metadata files are at most ``Limits.json_bytes`` and parsed strictly (:mod:`dlformats.containers.jsonio`);
* array declarations are checked before zarr sees them (:meth:`StoreReader.array_info`): an
  allow-list of dtypes (bool, integers, floats) and codecs (no pickle, no object arrays), chunk
  and array sizes against :class:`~dlformats.Limits`;
* a chunk file is at most a little larger than its decoded chunk, and its compressed stream may
  not declare (blosc, lz4, zstd headers) or inflate to (gzip, zlib, bz2, lzma, zstd without a
  declared size: a bounded trial) more bytes than its chunk holds, so a decompression bomb
  never reaches the codec that would allocate it.

zarr reads the chunks through :class:`GuardedStore`, a :class:`zarr.storage.LocalStore` whose
reads go through these checks.
"""

from __future__ import annotations

import asyncio
import bz2
import lzma
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

from dlformats.containers.jsonio import load_json
from dlformats.errors import CorruptFileError, DLFormatsError, UnsafeArchiveError, UnsupportedFeatureError
from dlformats.limits import Limits

METADATA_NAMES = ("zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata")
V3_DTYPES = {
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
}
V2_DTYPE = re.compile(r"\A(\|b1|[|<>][iu]1|[<>][iu][248]|[<>]f[248])\Z")
V3_COMPRESSORS = {"gzip", "zstd", "blosc"}
V2_COMPRESSORS = {"gzip", "zlib", "zstd", "blosc", "lz4", "bz2", "lzma"}
MAX_PLANE_CHUNKS = 1 << 16  # chunks one plane may be split into (1 x 1 pixel chunks would make a plane a million reads)
SLACK = 1 << 16  # what a compressed chunk may add to its raw size (headers, incompressible blocks)
NO_CHUNK = (1 << 64) - 1  # a shard index entry for an absent chunk
MAX_SHARD_CHUNKS = 1 << 20  # chunks in one shard (its index is 16 bytes per chunk)


@dataclass
class ArrayInfo:
    """An array's checked declaration.

    Attributes:
        path: the array's path inside the store (``"labels/cells/0"``).
        zarr_format: 2 or 3.
        shape: the array's shape.
        dtype: numpy dtype of its elements.
        chunks: the chunk shape zarr decodes at once (the inner chunk of a sharded array).
        dimension_names: zarr v3 ``dimension_names`` (``None`` when absent).
        chain: bytes-to-bytes codecs of one chunk, in decoding order, ``(name, configuration)``.
        shard: ``(chunks per shard, index bytes, index at start, index chain)`` for a sharded array.
    """

    path: str
    zarr_format: int
    shape: tuple[int, ...]
    dtype: Any
    chunks: tuple[int, ...]
    dimension_names: tuple[str | None, ...] | None
    chain: list[tuple[str, dict[str, Any]]]
    shard: tuple[int, int, bool] | None = None

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunks) * self.dtype.itemsize


class StoreReader:
    """Reads one store's files safely; see the module docstring."""

    def __init__(self, root: Path, name: str, limits: Limits) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        self.name = name
        self.limits = limits
        self.arrays: dict[str, ArrayInfo] = {}

    # ------------------------------------------------------------ files
    def resolve(self, key: str) -> str:
        """The real path of ``key``; refuse keys and links leading outside the store."""
        parts = key.split("/")
        if not key or key.startswith("/") or "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in parts):
            raise UnsafeArchiveError(f"refusing the key {key!r}: it could leave the store", path=self.name, member=key)
        real = os.path.realpath(os.path.join(self.real, *parts))
        if real != self.real and not real.startswith(self.real + os.sep):
            raise UnsafeArchiveError(
                "a symbolic link in the store leads outside the store's folder", path=self.name, member=key
            )
        return real

    def json(self, key: str) -> Any:
        """The parsed JSON document at ``key``, or ``None`` when there is none."""
        real = self.resolve(key)
        try:
            if not os.path.isfile(real):
                return None
            size = os.path.getsize(real)
            self.limits.check("json_bytes", size, "metadata file too large", path=self.name, member=key)
            with open(real, "rb") as fh:
                data = fh.read(self.limits.json_bytes + 1)
        except OSError as exc:
            raise _os_error(exc, self.name, key) from exc
        return load_json(data, path=self.name, member=key, limits=self.limits)

    def read(self, key: str, byte_range: Any = None) -> bytes | None:
        """The bytes of ``key`` (or a range of them), checked; ``None`` when absent (zarr fills it)."""
        real = self.resolve(key)
        info = self._array_of(key)
        try:
            if not os.path.isfile(real):
                return None
            size = os.path.getsize(real)
            if info is None or key.rsplit("/", 1)[-1] in METADATA_NAMES:
                self.limits.check("json_bytes", size, "metadata file too large", path=self.name, member=key)
                with open(real, "rb") as fh:
                    return _ranged(fh, size, byte_range)
            bound = _file_bound(info)
            if size > bound:
                raise CorruptFileError(
                    f"chunk file of {size:,} bytes, more than a chunk of array {info.path} can take ({bound:,})",
                    path=self.name,
                    member=key,
                )
            with open(real, "rb") as fh:
                data = _ranged(fh, size, byte_range)
        except OSError as exc:
            raise _os_error(exc, self.name, key) from exc
        where = f"{key}"
        if info.shard is None:
            check_stream(data, info.chain, info.chunk_nbytes, self.name, where)
        else:
            self._check_shard(data, info, byte_range, size, where)
        return data

    def _array_of(self, key: str) -> ArrayInfo | None:
        best = None
        for path, info in self.arrays.items():
            if key.startswith(path + "/") and (best is None or len(path) > len(best.path)):
                best = info
        return best

    def _check_shard(self, data: bytes, info: ArrayInfo, byte_range: Any, size: int, where: str) -> None:
        count, index_nbytes, at_start = info.shard  # type: ignore[misc]
        if byte_range is not None:
            if at_start:
                is_index = byte_range == RangeByteRequest(0, index_nbytes)
            else:
                is_index = isinstance(byte_range, SuffixByteRequest) and byte_range.suffix == index_nbytes
            if not is_index:
                check_stream(data, info.chain, info.chunk_nbytes, self.name, where)
            return
        if len(data) < index_nbytes:
            raise CorruptFileError(f"shard of {info.path} is shorter than its index", path=self.name, member=where)
        index = data[:index_nbytes] if at_start else data[-index_nbytes:]
        entries = np.frombuffer(index[: 16 * count], dtype="<u8").reshape(-1, 2)
        for offset, nbytes in entries.tolist():
            if offset == NO_CHUNK and nbytes == NO_CHUNK:
                continue
            if offset + nbytes > len(data):
                raise CorruptFileError(
                    f"shard index of array {info.path} points past the shard's end", path=self.name, member=where
                )
            check_stream(data[offset : offset + nbytes], info.chain, info.chunk_nbytes, self.name, where)

    # ----------------------------------------------------------- arrays
    def array_info(self, path: str, zarr_format: int) -> ArrayInfo:
        """Read and check the declaration of the array at ``path``; remember it for chunk reads."""
        if path in self.arrays:
            return self.arrays[path]
        key = f"{path}/zarr.json" if zarr_format == 3 else f"{path}/.zarray"
        meta = self.json(key)
        if meta is None:
            other = self.json(f"{path}/.zarray" if zarr_format == 3 else f"{path}/zarr.json")
            found = "a zarr v2 array" if zarr_format == 3 and other is not None else "no array"
            if zarr_format == 2 and other is not None:
                found = "a zarr v3 array"
            raise CorruptFileError(
                f"the multiscales metadata names the array {path!r}, but there is {found} "
                f"(NGFF {'0.5 needs zarr v3' if zarr_format == 3 else '0.4 needs zarr v2'})",
                path=self.name,
                member=path,
            )
        if not isinstance(meta, dict):
            raise CorruptFileError("array metadata must be a JSON object", path=self.name, member=key)
        info = self._v3(meta, path, key) if zarr_format == 3 else self._v2(meta, path, key)
        ndim = len(info.shape)
        if ndim == 0 or len(info.chunks) != ndim:
            raise CorruptFileError(
                f"array {path}: shape {list(info.shape)} and chunk shape {list(info.chunks)} disagree",
                path=self.name,
                member=key,
            )
        itemsize = info.dtype.itemsize
        where = {"path": self.name, "member": path}
        self.limits.check("array_bytes", info.chunk_nbytes, f"one chunk of array {path} is too large", **where)
        self.limits.check("total_bytes", math.prod(info.shape) * itemsize, f"array {path} is too large", **where)
        if ndim >= 2:
            plane = info.shape[-2] * info.shape[-1] * itemsize
            self.limits.check("array_bytes", plane, f"one plane of array {path} is too large", **where)
            pieces = math.ceil(info.shape[-2] / info.chunks[-2]) * math.ceil(info.shape[-1] / info.chunks[-1])
            if pieces > MAX_PLANE_CHUNKS:
                raise UnsupportedFeatureError(
                    f"array {path}: chunks of {info.chunks[-2]} x {info.chunks[-1]} pixels split a plane into "
                    f"{pieces:,} pieces (at most {MAX_PLANE_CHUNKS:,} are read)",
                    **where,
                )
        self.arrays[path] = info
        return info

    def _v3(self, meta: dict[str, Any], path: str, key: str) -> ArrayInfo:
        where = {"path": self.name, "member": key}
        if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
            raise CorruptFileError(f"{path} is not a zarr v3 array", **where)
        shape = _ints(meta.get("shape"), "shape", 0, where)
        dtype_name = meta.get("data_type")
        if not isinstance(dtype_name, str) or dtype_name not in V3_DTYPES:
            raise UnsupportedFeatureError(
                f"array {path}: data type {dtype_name!r} is not supported (bool, integers and floats are)", **where
            )
        grid = meta.get("chunk_grid")
        if not (
            isinstance(grid, dict) and grid.get("name") == "regular" and isinstance(grid.get("configuration"), dict)
        ):
            raise UnsupportedFeatureError(f"array {path}: only a regular chunk grid is supported", **where)
        chunks = _ints(grid["configuration"].get("chunk_shape"), "chunk_shape", 1, where)
        if meta.get("storage_transformers"):
            raise UnsupportedFeatureError(f"array {path}: storage transformers are not supported", **where)
        names = meta.get("dimension_names")
        if names is not None and (
            not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names)
        ):
            raise CorruptFileError(f"array {path}: dimension_names must be a list of names", **where)
        codecs = meta.get("codecs")
        chain, shard = self._v3_codecs(codecs, path, where, top=True)
        if shard is not None:
            inner, inner_chain, _, crc, at_start = shard
            if len(inner) != len(chunks) or any(s % c for s, c in zip(chunks, inner)):
                raise CorruptFileError(f"array {path}: shard shape {chunks} is not a multiple of {inner}", **where)
            count = math.prod(s // c for s, c in zip(chunks, inner))
            if count > MAX_SHARD_CHUNKS:
                raise UnsupportedFeatureError(
                    f"array {path}: shards of {count:,} chunks (at most {MAX_SHARD_CHUNKS:,} are read)", **where
                )
            shard_bytes = math.prod(chunks) * np.dtype(dtype_name).itemsize  # zarr may decode a whole shard at once
            self.limits.check("array_bytes", shard_bytes, f"one shard of array {path} is too large", **where)
            index_nbytes = 16 * count + crc
            return ArrayInfo(
                path,
                3,
                tuple(shape),
                np.dtype(dtype_name),
                tuple(inner),
                tuple(names) if names is not None else None,
                inner_chain,
                (count, index_nbytes, at_start),
            )
        return ArrayInfo(
            path, 3, tuple(shape), np.dtype(dtype_name), tuple(chunks), tuple(names) if names else None, chain
        )

    def _v3_codecs(self, codecs: Any, path: str, where: dict[str, Any], *, top: bool) -> tuple[Any, Any]:
        """Check a v3 codec list; return the bytes codecs in decoding order and, at the top, the sharding."""
        if not isinstance(codecs, list) or not codecs:
            raise CorruptFileError(f"array {path}: 'codecs' must be a non-empty list", **where)
        seen_bytes = False
        chain: list[tuple[str, dict[str, Any]]] = []
        shard = None
        for codec in codecs:
            if isinstance(codec, str):
                codec = {"name": codec}
            if not isinstance(codec, dict) or not isinstance(codec.get("name"), str):
                raise CorruptFileError(f"array {path}: a codec is not an object with a name", **where)
            name = codec["name"]
            config = codec.get("configuration") or {}
            if not isinstance(config, dict):
                raise CorruptFileError(f"array {path}: codec {name} has a bad configuration", **where)
            if name == "transpose" and not seen_bytes:
                continue
            if name == "bytes" and not seen_bytes:
                seen_bytes = True
            elif name == "sharding_indexed" and top and not seen_bytes:
                seen_bytes = True
                inner = _ints(config.get("chunk_shape"), "sharding chunk_shape", 1, where)
                inner_chain, _ = self._v3_codecs(config.get("codecs"), path, where, top=False)
                index_codecs = config.get("index_codecs") or [{"name": "bytes"}, {"name": "crc32c"}]
                index_chain, _ = self._v3_codecs(index_codecs, path, where, top=False)
                if any(n != "crc32c" for n, _ in index_chain):
                    raise UnsupportedFeatureError(f"array {path}: a compressed shard index is not supported", **where)
                shard = (inner, inner_chain, 0, len(index_chain) * 4, config.get("index_location", "end") == "start")
            elif seen_bytes and (name in V3_COMPRESSORS or name == "crc32c"):
                chain.insert(0, (name, config))
            else:
                raise UnsupportedFeatureError(
                    f"array {path}: codec {name!r} is not supported here (bytes, transpose, gzip, zstd, blosc, "
                    "crc32c and sharding are)",
                    **where,
                )
        if not seen_bytes:
            raise CorruptFileError(f"array {path}: no 'bytes' codec turns the array into bytes", **where)
        if sum(1 for n, _ in chain if n != "crc32c") > 1:
            raise UnsupportedFeatureError(f"array {path}: two compressors in one codec chain", **where)
        if shard is not None:
            if chain:
                raise UnsupportedFeatureError(f"array {path}: codecs after sharding are not supported", **where)
            inner, inner_chain, _, crc, at_start = shard
            return chain, (inner, inner_chain, 0, crc, at_start)
        return chain, None

    def _v2(self, meta: dict[str, Any], path: str, key: str) -> ArrayInfo:
        where = {"path": self.name, "member": key}
        if meta.get("zarr_format") != 2:
            raise CorruptFileError(f"{path} is not a zarr v2 array", **where)
        shape = _ints(meta.get("shape"), "shape", 0, where)
        chunks = _ints(meta.get("chunks"), "chunks", 1, where)
        dtype = meta.get("dtype")
        if not isinstance(dtype, str) or not V2_DTYPE.match(dtype):
            raise UnsupportedFeatureError(
                f"array {path}: dtype {dtype!r} is not supported (bool, integers and floats are; never objects)",
                **where,
            )
        if meta.get("filters"):
            ids = [f.get("id") if isinstance(f, dict) else f for f in meta["filters"]]
            raise UnsupportedFeatureError(f"array {path}: filters {ids} are not supported", **where)
        if meta.get("order", "C") not in ("C", "F"):
            raise CorruptFileError(f"array {path}: order must be C or F", **where)
        compressor = meta.get("compressor")
        chain: list[tuple[str, dict[str, Any]]] = []
        if compressor is not None:
            if not isinstance(compressor, dict) or compressor.get("id") not in V2_COMPRESSORS:
                shown = compressor.get("id") if isinstance(compressor, dict) else compressor
                raise UnsupportedFeatureError(
                    f"array {path}: compressor {shown!r} is not supported ({', '.join(sorted(V2_COMPRESSORS))} are)",
                    **where,
                )
            chain.append((compressor["id"], compressor))
        return ArrayInfo(path, 2, tuple(shape), np.dtype(dtype), tuple(chunks), None, chain)

    # ------------------------------------------------------------- zarr
    def open(self, info: ArrayInfo) -> Any:
        """The zarr array of ``info``, reading through the guarded store."""
        import zarr

        store = GuardedStore(Path(self.real), read_only=True)
        store.reader = self
        try:
            array = zarr.open_array(store=store, path=info.path, mode="r", zarr_format=info.zarr_format)
        except DLFormatsError:
            raise
        except Exception as exc:
            raise CorruptFileError(
                f"zarr cannot open array {info.path}: {type(exc).__name__}: {exc}", path=self.name, member=info.path
            ) from exc
        if tuple(array.shape) != info.shape or np.dtype(array.dtype) != info.dtype:
            raise CorruptFileError(
                f"array {info.path} changed while it was opened", path=self.name, member=info.path
            )  # the declaration checked is the one read
        return array


def _ints(value: Any, what: str, low: int, where: dict[str, Any]) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int and v >= low for v in value):
        raise CorruptFileError(f"{what} must be a list of whole numbers >= {low}, found {str(value)[:80]}", **where)
    return value


def _ranged(fh: Any, size: int, byte_range: Any) -> bytes:
    if byte_range is None:
        return fh.read()
    if isinstance(byte_range, RangeByteRequest):
        fh.seek(byte_range.start)
        return fh.read(max(0, byte_range.end - byte_range.start))
    if isinstance(byte_range, OffsetByteRequest):
        fh.seek(byte_range.offset)
        return fh.read()
    if isinstance(byte_range, SuffixByteRequest):
        fh.seek(max(0, size - byte_range.suffix))
        return fh.read()
    raise TypeError(f"unexpected byte range {byte_range!r}")


def _file_bound(info: ArrayInfo) -> int:
    """The largest file a chunk (or a shard of chunks) of ``info`` may be."""
    one = info.chunk_nbytes + info.chunk_nbytes // 8 + SLACK
    if info.shard is None:
        return one
    count, index_nbytes, _ = info.shard
    return count * one + 16 * count + index_nbytes


def _os_error(exc: OSError, name: str, key: str) -> DLFormatsError:
    from dlformats.errors import environment_error

    err = environment_error(exc, path=name)
    if err is not None:
        err.member = key
        return err
    return CorruptFileError(f"cannot read: {exc.strerror or exc}", path=name, member=key)


# --------------------------------------------------------------- decompression bounds
def check_stream(data: bytes, chain: list[tuple[str, dict[str, Any]]], expected: int, name: str, key: str) -> None:
    """Refuse a chunk whose compressed stream would decode to more than ``expected`` bytes."""
    for codec, config in chain:
        if codec == "crc32c":
            if len(data) < 4:
                raise CorruptFileError("chunk too short for its checksum", path=name, member=key)
            data = data[:-4]
            continue
        declared = _declared_size(codec, data, expected, config)
        if declared is not None and declared > expected:
            raise CorruptFileError(
                f"chunk decompresses ({codec}) to {declared:,} bytes or more, but the chunk holds {expected:,}",
                path=name,
                member=key,
            )
        return


def _declared_size(codec: str, data: bytes, expected: int, config: dict[str, Any]) -> int | None:
    """What the stream will decode to, as far as it tells or a bounded trial shows (``None``: not known)."""
    if codec == "blosc":
        return int.from_bytes(data[4:8], "little") if len(data) >= 16 else None
    if codec == "lz4":
        return int.from_bytes(data[:4], "little") if len(data) >= 4 else None
    if codec == "zstd":
        size = zstd_content_size(data)
        if size is not None:
            return size
        return _trial(lambda: _zstd_trial(data, expected), expected)
    if codec in ("gzip", "zlib"):
        wbits = 47 if codec == "gzip" else 15  # 47: a zlib or gzip header, found automatically
        return _trial(lambda: zlib.decompressobj(wbits).decompress(data, expected + 1), expected)
    if codec == "bz2":
        return _trial(lambda: bz2.BZ2Decompressor().decompress(data, expected + 1), expected)
    if codec == "lzma":
        return _trial(lambda: lzma.LZMADecompressor().decompress(data, expected + 1), expected)
    return None


def _trial(decode: Any, expected: int) -> int | None:
    try:
        out = decode()
    except Exception:  # noqa: BLE001 - a broken stream: the codec itself reports it, as a corrupt chunk
        return None
    return len(out) if out is not None else None


def _zstd_trial(data: bytes, expected: int) -> bytes | None:
    import imagecodecs

    try:
        return imagecodecs.zstd_decode(data, out=expected)
    except Exception:  # noqa: BLE001 - does not fit (or is broken): report it as too large
        return b"\x00" * (expected + 1)


def zstd_content_size(data: bytes) -> int | None:
    """The decompressed size a zstd frame header declares, or ``None`` when it declares none."""
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    fhd = data[4]
    single = bool(fhd & 0x20)
    fcs_flag = fhd >> 6
    dict_bytes = (0, 1, 2, 4)[fhd & 3]
    pos = 5 + (0 if single else 1) + dict_bytes
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0 or len(data) < pos + size:
        return None
    value = int.from_bytes(data[pos : pos + size], "little")
    return value + 256 if size == 2 else value


# --------------------------------------------------------------- the zarr store
class GuardedStore(LocalStore):
    """A read-only :class:`~zarr.storage.LocalStore` whose every read goes through :meth:`StoreReader.read`."""

    reader: StoreReader

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        if prototype is None:
            prototype = default_buffer_prototype()
        data = await asyncio.to_thread(self.reader.read, key, byte_range)
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        return os.path.isfile(self.reader.resolve(key))

    def with_read_only(self, read_only: bool = False) -> GuardedStore:
        store = GuardedStore(self.root, read_only=True)
        store.reader = self.reader
        return store
