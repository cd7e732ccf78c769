"""dlformats.api: read, write and convert as a user calls them: options, labels from another file, failures.

Most of what the API does is tested where it matters to users: choosing and isolating plugins in
``test_registry.py``, options in ``test_options.py``, output targets in ``test_targets.py``,
snapshots and threads in ``test_snapshot.py``, every format's round trip in ``test_conformance.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlformats
from dlformats import hookimpl
from dlformats.spec import FormatSpec, parts
from dlformats.testing import make_project


class _FailingWriter:
    @hookimpl
    def dlformats_formats(self):
        def write(project, path, options):
            raise dlformats.CorruptFileError(f"cannot write {path}", path=str(path))

        return [FormatSpec(name="failing", description="d", extensions=(".fail",), write=write, writes=parts("y"))]


def test_writer_error_names_the_target_not_the_temporary(registry, tmp_path):
    registry.register(_FailingWriter(), "failing")
    target = tmp_path / "out.fail"
    with pytest.raises(dlformats.CorruptFileError) as info:
        dlformats.write(make_project(), target)
    assert info.value.path == str(target)
    assert str(info.value) == f"{target}: cannot write {target}"
    assert list(tmp_path.iterdir()) == []


def test_labels_options_replace_options_for_the_labels(zt_pair):
    image_path, labels_path, image, labels = zt_pair
    common = {"axes": "ZTYX", "labels_axes": "ZTYX", "options": {"select": {"Z": 1}}}
    shared = dlformats.read(image_path, labels_path, **common)
    assert np.array_equal(np.asarray(shared.y)[0], labels[1])  # options go to both by default
    project = dlformats.read(image_path, labels_path, **common, labels_options={"select": {"Z": 0}})
    assert np.array_equal(np.asarray(project.X)[0], image[1])
    assert np.array_equal(np.asarray(project.y)[0], labels[0])
