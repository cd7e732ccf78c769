"""Fixtures shared by test modules of the core."""

from __future__ import annotations

import numpy as np
import pytest

from dlformats.registry import Registry, use_registry


@pytest.fixture
def zt_pair(tmp_path):
    """An image and its labels saved as .npy, both (Z, T, height, width): (image path, labels path, image, labels)."""
    image = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    labels = np.zeros((2, 3, 4, 5), np.int32)
    labels[0, :, 1, 1], labels[1, :, 2, 2] = 1, 2
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path / "image.npy", tmp_path / "labels.npy", image, labels


@pytest.fixture
def registry():
    """An empty registry (no entry points) that the API uses while the test runs: register stand-ins in it."""
    with use_registry(Registry(load=False)) as reg:
        yield reg
