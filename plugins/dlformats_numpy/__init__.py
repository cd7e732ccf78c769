"""numpy ``.npy`` and ``.npz`` files (formats ``npy`` and ``npz``): DeepCell training data and plain arrays.

Safety: nothing is ever unpickled.  Headers are parsed with numpy's header readers;
object, structured and string image arrays are refused with
:class:`~dlformats.errors.UnsupportedFeatureError`; pixel arrays must be bool, int,
uint or float.  The declared ``prod(shape) * itemsize`` is checked against the bytes
present and against :class:`~dlformats.Limits` before anything is allocated.  An
``.npy`` on disk, and each *stored* (uncompressed) member of an ``.npz`` on disk, is
memory-mapped, so arrays larger than memory stream plane by plane (``total_bytes``
bounds them); deflated members and in-memory sources are read whole, bounded by
``array_bytes`` (and ``member_bytes`` while decompressing).  Fortran order and
either byte order work.

Which array is what in an ``.npz`` (names compared case-insensitively):

* image: ``X``, else ``raw``, else the first array (in archive order) whose name is
  not one of those below (the promise of DeepCell Label's format document);
* labels: the first present of ``y``, ``annotated``, ``labels``, ``label``, ``masks``,
  ``mask``, ``segmentation``, ``tracked``; otherwise the npz has no labels.  Read as
  a separate labels source (role ``"labels"``) the labels
  array, else the image array, is read as labels; an npz with labels only gives a
  project without an image;
* ``channels`` or ``channel_names``: 1-D unicode array, one name per image channel;
* ``features`` or ``feature_names``: 1-D unicode array, one name per label feature;
* ``cell_types``: 1-D unicode array, entry ``i`` names the type of cell ``i`` (``""``
  for none); each distinct name becomes a cell type (ids from 1 in order of first
  appearance, feature 0, a colour from a fixed list);
* ``embeddings``: 2-D numeric ``(cells, dims)``, row ``i`` is cell ``i``'s vector; a row
  of NaN only means "no embedding".
* anything else is reported in a warning and in ``metadata["npz"]["unused"]``.

String arrays must have numpy's unicode dtype (``<U..``), never object.

Axes: ``axes=`` (letters ``TZBCSYX``, validated) gives the order of the image
array (of the labels array when read as a separate labels source).  Without it, DeepCell's
channels-last layouts: 2-D ``YX``, 3-D ``YXC``, 4-D ``BYXC`` (batch = frames), 5-D
``BTYXC``; when that default would make C longer than Y (a ``(frames, Y, X)`` or
``(C, Y, X)`` stack) the reader raises :class:`~dlformats.errors.AmbiguousInputError`
asking for ``axes=`` instead of guessing.  The labels array follows the image's order
(without ``C`` when it has one dimension fewer).  A ``B`` axis beside ``T``/``Z`` with
more than one plane each (5-D batches of movies) gives one project per batch, as a
``.trks`` does: ``dlformats.read_all`` returns them all, ``convert`` writes one output
per batch, and read option ``batch=N`` (or ``select={"B": N}``) keeps one.

Writing (DeepCell's channels-last layout, always 4-D): ``.npz`` holds ``X``
``(frames, height, width, channels)`` in the image's dtype, ``y`` ``(frames, height,
width, features)`` int32 (re-encoded by DeepCell Label's export rule when the project
lists cells: each value is then its cell; without cells int64, uint32 and uint64
labels keep their type and values), and ``channels``, ``features`` and
``embeddings`` when the project has them (cell types are not written).  Write option
``compress`` (default true) deflates members; ``compress=false`` stores them so they
can be memory-mapped.  ``.npy`` holds ``X`` the same way (write option ``part="y"``:
the labels instead).  Reading either back gives the same ``X``/``y``; the frame axis
is then ``B``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlformats import FormatSpec, Option, hookimpl
from dlformats.spec import parts

if TYPE_CHECKING:
    from dlformats.model import Project
    from dlformats.sources import Source
    from dlformats.spec import ReadOptions, WriteOptions

NPY_SIGNATURE = b"\x93NUMPY"

BATCH = Option(
    "batch", int, None, minimum=0, help="the batch (B axis) to read as the one project, instead of one per batch"
)


def _read_npy(source: Source, options: ReadOptions) -> list[Project]:
    from ._read import read_npy

    return read_npy(source, options)


def _read_npz(source: Source, options: ReadOptions) -> list[Project]:
    from ._read import read_npz

    return read_npz(source, options)


def _sniff_npz(source: Source) -> bool:
    """True only for a zip whose members are all ``.npy`` (so DeepCell Label project zips are not taken)."""
    from ._read import npz_members

    return npz_members(source) is not None


def _write_npy(project: Project, path: Path, options: WriteOptions) -> None:
    from ._write import write_npy_file

    write_npy_file(project, path, options)


def _write_npz(project: Project, path: Path, options: WriteOptions) -> None:
    from ._write import write_npz_file

    write_npz_file(project, path, options)


@hookimpl
def dlformats_formats() -> list[FormatSpec]:
    """Declare the ``npy`` and ``npz`` formats."""
    return [
        FormatSpec(
            name="npy",
            description="numpy .npy array (image or labels; channels-last DeepCell layout by default), memory-mapped",
            extensions=(".npy",),
            signatures=(NPY_SIGNATURE,),
            reads=parts("X", "y"),
            writes=parts("X"),
            read=_read_npy,
            write=_write_npy,
            frame_axes="B",  # (frames, height, width, channels) reads back as batches
            progress_unit="frames",
            read_options=(BATCH,),
            write_options=(
                Option(
                    "part",
                    str,
                    "X",
                    choices=("X", "y"),
                    help="what to write: the image X, or the labels y",
                    writes={"X": parts("X"), "y": parts("y")},
                ),
            ),
        ),
        FormatSpec(
            name="npz",
            description="numpy .npz of arrays X/y (or raw/annotated), with channel names, cell types, embeddings",
            extensions=(".npz",),
            signatures=(b"PK\x03\x04",),
            sniff=_sniff_npz,
            reads=parts("X", "y", "channels", "features", "cell_types", "embeddings"),
            writes=parts("X", "y", "channels", "features", "embeddings"),
            read=_read_npz,
            write=_write_npz,
            frame_axes="B",
            progress_unit="frames",
            read_options=(BATCH,),
            write_options=(
                Option("compress", bool, True, help="deflate the members; false stores them, so they can be mapped"),
            ),
        ),
    ]
