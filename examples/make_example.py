"""Make the example files shipped in ``examples/data/`` (run from the repository root).

A synthetic two-channel timelapse (8 frames of 128 x 128, uint16, OME-TIFF with
channel names) of cells drifting across the field, one of which divides at frame 4,
and its labels as DeepCell Label takes them: a zip holding ``labels.tif`` (int32,
frames x height x width) and ``lineage.json`` (the division, deepcell-tracking style).
Made with numpy and tifffile only, so the example is this project's own work.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import tifffile

FRAMES, SIZE = 8, 128


def main(folder: Path = Path("examples/data")) -> None:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image = np.zeros((FRAMES, 2, SIZE, SIZE), np.uint16)
    labels = np.zeros((FRAMES, SIZE, SIZE), np.int32)
    centres = {1: (30.0, 30.0), 2: (90.0, 40.0), 3: (60.0, 95.0)}
    frames: dict[int, list[int]] = {}
    for t in range(FRAMES):
        if t == 4:  # cell 3 divides into 4 and 5
            r, c = centres.pop(3)
            centres[4], centres[5] = (r - 12, c - 6), (r + 12, c + 6)
        for label, (r, c) in centres.items():
            disk = (yy - r - t) ** 2 + (xx - c - t / 2) ** 2 < 11**2
            labels[t][disk] = label
            frames.setdefault(label, []).append(t)
        nuclei = (labels[t] > 0) * 1800.0
        image[t, 0] = np.clip(rng.normal(300 + nuclei, 60), 0, 65535).astype(np.uint16)
        image[t, 1] = np.clip(rng.normal(500 + nuclei / 2, 80), 0, 65535).astype(np.uint16)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        folder / "timelapse.ome.tif",
        image,
        photometric="minisblack",
        compression="zlib",
        metadata={"axes": "TCYX", "Channel": {"Name": ["nuclear", "membrane"]}},
    )
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, labels, photometric="minisblack", compression="zlib", metadata={"axes": "TYX"})
    lineage = {
        str(label): {
            "label": label,
            "frames": ts,
            "daughters": [4, 5] if label == 3 else [],
            "parent": 3 if label in (4, 5) else None,
            "frame_div": 4 if label == 3 else None,
            "capped": label == 3,
        }
        for label, ts in sorted(frames.items())
    }
    with zipfile.ZipFile(folder / "labels.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.tif", tiff.getvalue())
        zf.writestr("lineage.json", json.dumps(lineage, indent=1) + "\n")


if __name__ == "__main__":
    main()
