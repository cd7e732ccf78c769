"""dlformats.errors: every error is typed, located, and survives pickling (worker processes send them back)."""

from __future__ import annotations

import pickle

import pytest

from dlformats import errors
from dlformats.model import Problem


def _every_error() -> list[errors.DLFormatsError]:
    where = {"path": "a.zip", "member": "m", "format": "f", "hint": "h"}
    return [
        errors.DLFormatsError("r", **where),
        errors.CorruptFileError("r", **where),
        errors.UnsupportedFeatureError("r", **where),
        errors.LimitExceededError("big", limit="array_bytes", allowed=1, found=2, **where),
        errors.UnsafeArchiveError("r", **where),
        errors.InconsistentDataError("r", problems=[Problem("divisions", "bad", "error")], **where),
        errors.AmbiguousInputError("r", option="series", choices=[0, 1], **where),
        errors.InvalidOptionError("r", option="series", valid=["series (int >= 0)"], **where),
        errors.NotMyFormat("r", **where),
        errors.NoReaderError("r", detected="zip", candidates=[errors.Candidate("a", "b", "c")], install=["x"]),
        errors.NoWriterError("r", **where),
        errors.PluginCrashedError("r", stage="write", plugin="p", **where),
        errors.PluginError("r", plugins=["a", "b"], distributions=["d"], **where),
        errors.EnvironmentFailureError("r", errno=28, **where),
        errors.NetworkError("r", errno=None, **where),
        errors.SourceNotFoundError("no such file or folder", path="a.tif"),
        errors.PartsDroppedError("r", dropped=["y", "cells"], **where),
    ]


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and back.args == error.args
    assert vars(back) == vars(error)


def test_every_error_class_is_covered():
    covered = {type(e) for e in _every_error()}
    declared = {getattr(errors, n) for n in errors.__all__}
    assert {c for c in declared if isinstance(c, type) and issubclass(c, errors.DLFormatsError)} <= covered
