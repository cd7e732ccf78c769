"""dlformats in napari: open and save every format dlformats reads and writes.

An npe2 plugin (manifest ``napari.yaml`` beside this file, announced through the
entry-point group ``napari.manifest``); install it with ``pip install 'dlformats[napari]'``.

* Opening a file or folder (drag and drop, File > Open, ``viewer.open(path)``) gives,
  for each project it holds: the image, one layer per channel (``channel_axis=0``,
  named after the channels), of shape (frames, height, width); one labels layer per
  feature, (frames, height, width); the spots as a points layer, ``(y, x)`` in pixels,
  with their other columns as features; and a tracks layer, rows
  ``[track_id, t, y, x]`` at each cell's centroid with ``graph`` ``{daughter: [parent]}``,
  when the project has divisions.  Frames are the first axis of every layer, labelled
  ``t``, ``z`` or ``b`` after :attr:`dlformats.Project.frame_axis`.
* Saving image, labels, points and tracks layers (File > Save All Layers,
  ``viewer.layers.save(path)``) writes the format of ``path``'s extension (a
  DeepCell Label project ``.zip`` by default).

:func:`project_to_layers` and :func:`layers_to_project` are the same conversions for
notebooks.  Nothing here imports napari: it is imported by napari, when a file is
opened or saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._layers import layers_to_project, project_to_layers


def __getattr__(name: str) -> Any:
    if name in ("project_to_layers", "layers_to_project"):
        from . import _layers

        return getattr(_layers, name)
    raise AttributeError(f"module 'dlformats_napari' has no attribute {name!r}")


__all__ = ["layers_to_project", "project_to_layers"]
