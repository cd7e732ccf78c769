"""The reference pipeline, written plainly the way the reference app works (for side-by-side benchmarks).

Whole arrays in memory; each TIFF built in memory and compressed with zlib;
the export rule applied with one boolean mask per cell; the zip deflated again
around the TIFFs.  Not part of dlformats: it exists so that the benchmarks can
print a ratio against the approach the issues name.

Usage: ``python benchmarks/reference_pipeline.py INPUT.npz|INPUT.tif OUTPUT.zip``
"""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np
import tifffile


def export_rule_per_cell(y: np.ndarray, cells: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """The export rule, one mask per cell per frame (cost grows with cells x pixels)."""
    out = np.zeros_like(y)
    top = max((c["cell"] for c in cells), default=0)
    new_cells = []
    for c in range(y.shape[0]):
        for t in range(y.shape[1]):
            frame = y[c, t]
            groups: dict[int, list[int]] = {}
            for cell in cells:
                if cell["t"] == t and cell["c"] == c:
                    groups.setdefault(cell["value"], []).append(cell["cell"])
            nxt = top + 1
            for value, members in groups.items():
                mask = frame == value
                if len(members) == 1:
                    out[c, t][mask] = members[0]
                    new_cells.append({"value": members[0], "cell": members[0], "t": t, "c": c})
                else:
                    out[c, t][mask] = nxt
                    new_cells += [{"value": nxt, "cell": m, "t": t, "c": c} for m in members]
                    nxt += 1
    return out, new_cells


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    if path.endswith(".npz"):
        data = np.load(path)
        X, y = data["X"], data["y"]  # (B, Y, X, C) channels-last
        return np.moveaxis(X, -1, 0), np.moveaxis(y, -1, 0)
    with tifffile.TiffFile(path) as tif:
        X = tif.series[0].asarray()  # (C, T, Y, X) written by the benchmark
    with tifffile.TiffFile(path.replace(".ome.tif", ".labels.tif")) as tif:
        y = tif.series[0].asarray()  # (T, Y, X): one feature
    return X, y[None]


def main(src: str, dst: str) -> None:
    X, y = load(src)
    y = y.astype(np.int32)
    cells = [
        {"value": int(v), "cell": int(v), "t": t, "c": c}
        for c in range(y.shape[0])
        for t in range(y.shape[1])
        for v in np.unique(y[c, t])
        if v
    ]
    y, cells = export_rule_per_cell(y, cells)
    members = {}
    for name, arr in (("X.ome.tiff", X), ("y.ome.tiff", y)):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, ome=True, metadata={"axes": "CZYX"}, compression="zlib", photometric="minisblack")
        members[name] = buf.getvalue()
    members["cells.json"] = json.dumps(cells).encode()
    members["divisions.json"] = b"[]"
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
