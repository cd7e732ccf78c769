"""The napari writer: image, labels, points and tracks layers to any format dlformats writes."""

from __future__ import annotations

from dlformats.errors import DLFormatsError

from ._layers import LayerData, layers_to_project
from ._reader import notify_error


def write_layers(path: str, layer_data: list[LayerData]) -> list[str]:
    """napari's multi-layer writer: the layers as one project, written to ``path``.

    The format is the one of ``path``'s extension (``.zip``: a DeepCell Label project);
    layer names become channel and feature names, the tracks graph the divisions
    (see :func:`dlformats_napari.layers_to_project`).  The file is written under a
    temporary name and renamed at the end.  An error from dlformats is shown as a
    one-line napari error notification and nothing is written.

    Returns:
        ``[path]`` written, or ``[]`` after an error.
    """
    import dlformats

    try:
        project = layers_to_project(layer_data)
        written = dlformats.write(project, path)
    except DLFormatsError as exc:
        exc.located(path)
        if not notify_error(exc):
            raise
        return []
    return [str(written)]
