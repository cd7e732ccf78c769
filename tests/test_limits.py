"""dlformats.limits: limits parsed from the command line, and a check that names the limit to raise."""

from __future__ import annotations

import pytest

from dlformats import InvalidOptionError, LimitExceededError, Limits

ARABIC_INDIC_12 = "\u0661\u0662"


@pytest.mark.parametrize(
    ("items", "field", "value"),
    [
        (["array_bytes=1K"], "array_bytes", 1024),
        (["array-bytes=2m"], "array_bytes", 2 << 20),
        (["member_bytes=3G"], "member_bytes", 3 << 30),
        (["total_bytes=1T"], "total_bytes", 1 << 40),
        ([" json_depth = 7 "], "json_depth", 7),
        (["json_depth=0"], "json_depth", 0),
    ],
)
def test_limits_parse(items, field, value):
    limits = Limits.parse(items, base=Limits(csv_bytes=5))
    assert getattr(limits, field) == value and limits.csv_bytes == 5


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("nonsense=1", "bad limit"),
        ("array_bytes", "bad limit"),
        ("=5", "bad limit"),
        ("array_bytes=", "bad limit value"),
        ("array_bytes=1.5G", "bad limit value"),
        ("array_bytes=-1", "bad limit value"),
        ("array_bytes=12KB", "bad limit value"),
        ("array_bytes=" + ARABIC_INDIC_12, "bad limit value"),
        ("array_bytes=0x10", "bad limit value"),
        ("array_bytes=1_000", "bad limit value"),
    ],
)
def test_limits_parse_errors(item, why):
    with pytest.raises(InvalidOptionError, match=why) as info:
        Limits.parse([item])
    assert repr(item) in str(info.value)


def test_limit_check_carries_its_fields():
    Limits(array_bytes=10).check("array_bytes", 10, "fine")
    with pytest.raises(LimitExceededError) as info:
        Limits(array_bytes=10).check("array_bytes", 11, "frame too large", path="f.tif", member="p0")
    err = info.value
    assert (err.limit, err.allowed, err.found, err.path, err.member) == ("array_bytes", 10, 11, "f.tif", "p0")
    assert "limits=Limits(array_bytes=N)" in str(err)  # Python's syntax; the command says --limit
