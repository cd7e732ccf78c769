"""The napari reader: any file or folder an installed dlformats format claims."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Sequence

from dlformats.errors import DLFormatsError

from ._layers import LayerData, one_line, project_to_layers

PathOrPaths = str | Sequence[str]


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """napari's ``get_reader``: :func:`read_layers` when a dlformats format claims ``path``, else ``None``.

    A format claims a path by its content (leading bytes, zip members, a folder's
    layout: the registry's sniffers) or its extension, as :func:`dlformats.read`
    chooses readers; no pixel is read.  A URL is claimed by its extension alone (it
    is downloaded only when read).  Several paths at once (napari's stack) are declined.
    """
    if not isinstance(path, (str, os.PathLike)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        claimed = _claimed(os.fspath(path))
    except DLFormatsError:
        claimed = True  # a format's sniffer found it broken: reading says why, in a notification
    return read_layers if claimed else None


def _claimed(path: str) -> bool:
    import dlformats

    if path.lower().startswith(("http://", "https://")):
        name = urllib.parse.urlsplit(path).path.rsplit("/", 1)[-1].lower()
        return any(f["reads"] and name.endswith(tuple(f["extensions"])) for f in dlformats.formats() if f["extensions"])
    if not os.path.exists(path):
        return False
    from dlformats.registry import get_registry
    from dlformats.sources import open_source

    with open_source(path) as source:
        candidates, _ = get_registry().reader_candidates(source)
    return bool(candidates)


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """Read ``path`` with dlformats; every project it holds as layers (see :func:`project_to_layers`).

    An error from dlformats (a corrupt file, a limit, a missing plugin) is shown as a
    one-line napari error notification and nothing is opened.
    """
    if not isinstance(path, (str, os.PathLike)):
        path = path[0]
    path = os.fspath(path)
    import dlformats

    try:
        projects = dlformats.read_all(path)
        layers: list[LayerData] = []
        for i, project in enumerate(projects):
            prefix = f"batch {i}: " if len(projects) > 1 else ""
            layers.extend(project_to_layers(project, source=path, prefix=prefix))
    except DLFormatsError as exc:
        if not notify_error(exc):
            raise
        return [(None,)]  # type: ignore[list-item]  # napari's "read, nothing to show"
    if not layers:
        _notify_warning(f"{path}: nothing to show: it holds no image, labels or spots (a lineage needs its labels)")
        return [(None,)]  # type: ignore[list-item]
    return layers


def notify_error(exc: DLFormatsError) -> bool:
    """Show ``exc`` as a one-line napari error notification; ``False`` when napari is absent."""
    try:
        from napari.utils.notifications import show_error
    except ImportError:
        return False
    show_error(one_line(exc))
    return True


def _notify_warning(message: str) -> None:
    try:
        from napari.utils.notifications import show_warning
    except ImportError:
        import warnings

        warnings.warn(message, stacklevel=3)
        return
    show_warning(message)
