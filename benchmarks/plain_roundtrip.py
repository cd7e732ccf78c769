"""The plain script dlformats' project zip round trip is compared with (benchmarks only, not part of dlformats).

Reads a project zip the simplest way: ``json.loads`` of ``cells.json``, both TIFFs read
whole with tifffile; writes them back uncompressed into a zip with ``json.dumps`` of the
cells.  No validation, no export rule, no streaming: the floor a library has to reach
with all its checks.

Usage: ``python benchmarks/plain_roundtrip.py IN.zip OUT.zip``
"""

from __future__ import annotations

import io
import json
import sys
import zipfile

import tifffile


def main(src: str, dst: str) -> None:
    with zipfile.ZipFile(src) as zf:
        cells = json.loads(zf.read("cells.json"))
        X = tifffile.imread(io.BytesIO(zf.read("X.ome.tiff")))
        y = tifffile.imread(io.BytesIO(zf.read("y.ome.tiff")))
    with zipfile.ZipFile(dst, "w") as zf:
        for name, arr in (("X.ome.tiff", X), ("y.ome.tiff", y)):
            buf = io.BytesIO()
            tifffile.imwrite(buf, arr)
            zf.writestr(name, buf.getvalue())
        zf.writestr("cells.json", json.dumps(cells))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
