"""The plugin registry: which reader is chosen and why, isolation of broken plugins, blocking, the errors.

Unit tests build a ``Registry(load=False)`` and register stand-in plugins; integration tests
put fake distributions (a ``*.dist-info`` folder with an ``entry_points.txt``) on ``sys.path``
so that plugins are found through real entry points.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import dlformats
from dlformats import FormatSpec, NotMyFormat, Project, hookimpl
from dlformats.errors import InvalidOptionError, NoReaderError, NoWriterError, PluginError, ReaderCrashedError
from dlformats.registry import Registry
from dlformats.sources import open_source

_names = itertools.count()


def _reader(name: str):
    def read(source, options):
        import numpy as np

        return Project(y=np.zeros((1, 1, 2, 2), np.int32), cells=[], metadata={"read_by": name})

    return read


def fmt(name: str, **kw) -> FormatSpec:
    kw.setdefault("read", _reader(name))
    kw.setdefault("reads", frozenset({"y", "cells"}) if kw["read"] is not None else frozenset())
    return FormatSpec(name=name, description=f"test format {name}", **kw)


def plugin(*specs: FormatSpec) -> types.SimpleNamespace:
    """A plugin object declaring ``specs`` (a module works the same way)."""
    return types.SimpleNamespace(dlformats_formats=hookimpl(lambda: list(specs)))


def registry(*entries: tuple[str, FormatSpec | list[FormatSpec], str]) -> Registry:
    """A registry of ``(plugin name, spec(s), distribution)`` entries, loading no entry points."""
    reg = Registry(load=False, disabled=set())
    for name, specs, dist in entries:
        specs = specs if isinstance(specs, list) else [specs]
        reg.register(plugin(*specs), name, distribution=dist, version="1.0")
    return reg


def order(reg: Registry, data: bytes, filename: str, format: str | None = None) -> list[str]:
    with open_source(data, name=filename) as src:
        return [f.name for f in reg.reader_candidates(src, format)[0]]


def notes(reg: Registry, data: bytes, filename: str) -> dict[str, str]:
    with open_source(data, name=filename) as src:
        return {c.format: c.reason for c in reg.reader_candidates(src)[1]}


@pytest.fixture
def use(monkeypatch):
    """Make ``dlformats.read`` & co. use the given registry."""

    def install(reg: Registry) -> Registry:
        monkeypatch.setattr("dlformats.registry._REGISTRY", reg)
        return reg

    return install


# ------------------------------------------------------------------ choice order
def test_explicit_format_wins_even_over_content_that_says_no():
    reg = registry(("p", [fmt("sig", signatures=(b"SIG",), extensions=(".x",)), fmt("other")], "third"))
    assert order(reg, b"NOT", "a.x") == []
    assert order(reg, b"NOT", "a.x", format="other") == ["other"]
    assert order(reg, b"SIG", "a.x", format="other") == ["other"]


def test_content_beats_extension():
    reg = registry(
        ("a", fmt("by-extension", extensions=(".dat",), priority=100), "third"),
        ("b", fmt("by-content", signatures=(b"MAGIC",)), "third"),
    )
    assert order(reg, b"MAGIC and more", "a.dat") == ["by-content", "by-extension"]
    assert order(reg, b"other bytes", "a.dat") == ["by-extension"]


def test_content_that_says_no_is_never_tried():
    reg = registry(
        ("a", fmt("sig", signatures=(b"MAGIC",), extensions=(".dat",)), "third"),
        ("b", fmt("sniffed", sniff=lambda source: False, extensions=(".dat",)), "third"),
    )
    assert order(reg, b"other", "a.dat") == []
    why = notes(reg, b"other", "a.dat")
    assert "not this format" in why["sig"] and "not this format" in why["sniffed"]


def test_longest_extension_wins():
    reg = registry(
        ("a", fmt("tif", extensions=(".tif", ".tiff"), priority=5), "third"),
        ("b", fmt("ome", extensions=(".ome.tif", ".ome.tiff")), "third"),
    )
    assert order(reg, b"II*\x00", "cells.OME.TIFF") == ["ome", "tif"]
    assert order(reg, b"II*\x00", "cells.tiff") == ["tif"]


def test_priority_breaks_a_tie_of_content_and_extension():
    reg = registry(
        ("a", fmt("low", extensions=(".x",), priority=0), "third"),
        ("b", fmt("high", extensions=(".x",), priority=3), "third"),
    )
    assert order(reg, b"", "f.x") == ["high", "low"]


def test_third_party_beats_builtin_then_name_decides():
    spec = {"extensions": (".x",), "signatures": (b"S",)}
    reg = registry(
        ("builtin", fmt("a-builtin", **spec), "dlformats"),
        ("zed", fmt("z-third", **spec), "someone-else"),
        ("bee", fmt("b-third", **spec), "someone-else"),
    )
    assert order(reg, b"S", "f.x") == ["b-third", "z-third", "a-builtin"]


def test_order_does_not_depend_on_registration_order():
    entries = [
        ("p1", fmt("one", extensions=(".x",)), "d"),
        ("p2", fmt("two", extensions=(".x",)), "d"),
        ("p3", fmt("three", extensions=(".a.x",)), "dlformats"),
        ("p4", fmt("four", sniff=lambda s: True), "d"),
    ]
    orders = {tuple(order(registry(*perm), b"", "f.a.x")) for perm in itertools.permutations(entries)}
    assert orders == {("four", "three", "one", "two")}


def test_format_without_extensions_is_chosen_by_sniff_alone():
    reg = registry(
        ("a", fmt("folderish", sniff=lambda s: s.head.startswith(b"HDR") or None), "d"),
        ("b", fmt("ext", extensions=(".x",)), "d"),
    )
    assert order(reg, b"HDR...", "f.bin") == ["folderish"]
    assert order(reg, b"???", "f.bin") == []  # cannot tell and no extension: not tried
    assert "no extension" in notes(reg, b"???", "f.bin")["folderish"]


def test_sniffer_may_decline_with_not_my_format():
    def sniff(source):
        raise NotMyFormat("wrong version")

    reg = registry(("a", fmt("picky", sniff=sniff, extensions=(".x",)), "d"))
    assert order(reg, b"v2", "f.x") == []
    assert "wrong version" in notes(reg, b"v2", "f.x")["picky"]


def test_crashing_sniffer_is_reported_by_name():
    def sniff(source):
        raise KeyError("oops")

    reg = registry(("sniffy", fmt("crashy", sniff=sniff), "d"))
    with open_source(b"x", name="f.x") as src, pytest.raises(ReaderCrashedError) as info:
        reg.reader_candidates(src)
    assert info.value.format == "crashy" and "sniffy" in str(info.value) and "f.x" in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


def test_unknown_format_lists_known_ones():
    reg = registry(("a", [fmt("alpha"), fmt("beta")], "d"))
    with pytest.raises(InvalidOptionError, match="alpha, beta"):
        reg.get("gamma")


# ------------------------------------------------------------------ reading
def test_not_my_format_lets_the_next_candidate_try(use, tmp_path):
    def decline(source, options):
        raise NotMyFormat("header says version 9")

    use(
        registry(
            ("first", fmt("first", extensions=(".x",), priority=1, read=decline), "d"),
            ("second", fmt("second", extensions=(".x",)), "d"),
        )
    )
    (tmp_path / "f.x").write_bytes(b"data")
    project = dlformats.read(tmp_path / "f.x")
    assert project.metadata["read_by"] == "second"
    assert project.metadata["format"] == "second" and project.provenance["y"].format == "second"


def test_crashing_reader_is_reported_not_swallowed(use, tmp_path):
    def crash(source, options):
        return {}["missing"]

    tried = []

    def fallback(source, options):
        tried.append(True)
        return _reader("fallback")(source, options)

    use(
        registry(
            ("crasher", fmt("crashy", extensions=(".x",), priority=1, read=crash), "d"),
            ("other", fmt("fallback", extensions=(".x",), read=fallback), "d"),
        )
    )
    (tmp_path / "f.x").write_bytes(b"data")
    with pytest.raises(ReaderCrashedError) as info:
        dlformats.read(tmp_path / "f.x")
    assert info.value.format == "crashy" and "crasher" in str(info.value)
    assert info.value.path == str(tmp_path / "f.x")
    assert isinstance(info.value.__cause__, KeyError)
    assert not tried, "a crash must not be turned into 'try the next one'"


def test_typed_error_from_reader_is_located_and_named(use, tmp_path):
    def broken(source, options):
        raise dlformats.CorruptFileError("bad header", member="inner.json")

    use(registry(("p", fmt("strict", extensions=(".x",), read=broken), "d")))
    (tmp_path / "f.x").write_bytes(b"data")
    with pytest.raises(dlformats.CorruptFileError) as info:
        dlformats.read(tmp_path / "f.x")
    assert info.value.format == "strict" and info.value.path == str(tmp_path / "f.x")
    assert str(info.value).startswith(f"{tmp_path / 'f.x'}: inner.json: bad header")


def test_no_reader_error_says_everything(fake_site, use, tmp_path):
    def decline(source, options):
        raise NotMyFormat("no 'frames' key")

    reg = use(Registry(disabled=set()))  # real entry points, with fake_site's broken plugin
    reg.register(
        plugin(fmt("json-thing", extensions=(".json",), read=decline, install_hint="pip install jt")), "jsonish"
    )
    reg.register(plugin(fmt("tiff-thing", signatures=(b"II*\x00",), install_hint="pip install tt")), "tiffish")
    (tmp_path / "cells.json").write_bytes(b'{"a": 1}')
    with pytest.raises(NoReaderError) as info:
        dlformats.read(tmp_path / "cells.json")
    err = info.value
    text = str(err)
    assert err.path == str(tmp_path / "cells.json") and str(tmp_path / "cells.json") in text
    assert err.detected == "JSON document" and "detected: JSON document" in text
    reasons = {c.format: c.reason for c in err.candidates}
    assert reasons["json-thing"] == "declined: no 'frames' key"
    assert "not this format" in reasons["tiff-thing"]
    assert "json-thing" in text and "tiff-thing" in text and "no 'frames' key" in text
    assert err.failed_plugins["fake-broken"] == "ImportError: needs libfoo" and "needs libfoo" in text
    assert {"pip install jt", "pip install tt"} <= set(err.install) and "pip install tt" in text
    assert "\n" not in text


def test_no_reader_at_all_still_names_file_and_content(use, tmp_path):
    use(registry(("p", fmt("x-only", extensions=(".x",), signatures=(b"X",)), "d")))
    (tmp_path / "mystery.bin").write_bytes(b"\xff\x00\x81binary")
    with pytest.raises(NoReaderError) as info:
        dlformats.read(tmp_path / "mystery.bin")
    assert "mystery.bin" in str(info.value) and info.value.detected == "unrecognised binary data"
    assert [c.format for c in info.value.candidates] == ["x-only"]


def test_writer_chosen_by_longest_extension_or_format():
    def write(project, path, options):
        pass

    reg = registry(
        ("a", fmt("zip", extensions=(".zip",), write=write, writes=frozenset({"y"})), "d"),
        ("b", fmt("special-zip", extensions=(".special.zip",), write=write, writes=frozenset({"y"})), "d"),
        ("c", fmt("read-only", extensions=(".ro",)), "d"),
    )
    assert reg.writer_for("out.special.zip").name == "special-zip"
    assert reg.writer_for("out.zip").name == "zip"
    assert reg.writer_for("out.anything", "zip").name == "zip"
    with pytest.raises(NoWriterError, match=r"\.special\.zip"):
        reg.writer_for("out.ro")
    with pytest.raises(NoWriterError):
        reg.writer_for("out.zip", "read-only")


# ------------------------------------------------------------------ broken and clashing plugins
def test_plugin_whose_declaration_fails_is_reported_once_and_isolated():
    def boom():
        raise RuntimeError("cannot declare")

    reg = registry(("good", fmt("good", extensions=(".x",)), "d"))
    reg.register(types.SimpleNamespace(dlformats_formats=hookimpl(boom)), "bad", distribution="bad-dist")
    reg.register(types.SimpleNamespace(dlformats_formats=hookimpl(lambda: [{"name": "dict"}])), "worse")
    assert [f.name for f in reg.formats()] == ["good"]
    reg.register(plugin(fmt("late")), "late", distribution="d")  # rebuilds the formats
    assert [f.name for f in reg.formats()] == ["good", "late"]
    failed = reg.failed_plugins()
    assert set(failed) == {"bad", "worse"}, failed
    assert "cannot declare" in failed["bad"] and "not FormatSpec" in failed["worse"]
    assert len(reg.failures) == 2


def test_same_format_name_twice_names_both_distributions():
    reg = registry(("one", fmt("dup"), "dist-one"), ("two", fmt("dup"), "dist-two"))
    with pytest.raises(PluginError) as info:
        reg.formats()
    assert info.value.distributions == ["dist-one", "dist-two"] and info.value.plugins == ["one", "two"]
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)
    assert "DLFORMATS_DISABLE_PLUGINS" in str(info.value)


def test_disabled_by_plugin_or_distribution_name(monkeypatch):
    monkeypatch.setenv("DLFORMATS_DISABLE_PLUGINS", " alpha , Some_Dist ")
    reg = Registry(load=False)
    assert reg.disabled == {"alpha", "Some_Dist"}
    reg.register(plugin(fmt("a")), "alpha", distribution="d")
    reg.register(plugin(fmt("b")), "beta", distribution="some-dist")
    reg.register(plugin(fmt("c")), "gamma", distribution="d")
    assert [f.name for f in reg.formats()] == ["c"]
    assert reg.blocked == ["alpha", "beta"]


# ------------------------------------------------------------------ real entry points
def make_dist(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Lay out an installed distribution: a dist-info folder with entry points, plus its modules."""
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    eps = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[dlformats.plugins]\n{eps}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


GOOD_PLUGIN = """
from dlformats import FormatSpec, hookimpl
from dlformats.spec import parts

def _read(source, options):
    import numpy as np
    from dlformats import Project
    return Project(y=np.zeros((1, 1, 2, 2), np.int32), cells=[])

@hookimpl
def dlformats_formats():
    return [FormatSpec(name={name!r}, description="fake", extensions=({ext!r},), read=_read, reads=parts("y"))]
"""


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A folder on sys.path holding a working fake plugin and one that fails to import."""
    n = next(_names)
    good, broken = f"dlformats_fake_good{n}", f"dlformats_fake_broken{n}"
    root = tmp_path / "site"
    make_dist(root, "fake-good", {"fake-good": good}, {good: GOOD_PLUGIN.format(name="fake", ext=".fake")})
    make_dist(root, "fake-broken", {"fake-broken": broken}, {broken: "raise ImportError('needs libfoo')\n"})
    monkeypatch.syspath_prepend(str(root))
    return root


def test_plugin_failing_to_import_is_reported_and_not_fatal(fake_site, use, tmp_path):
    reg = use(Registry(disabled=set()))
    names = [f.name for f in reg.formats()]
    assert "fake" in names, names
    assert reg.failed_plugins()["fake-broken"] == "ImportError: needs libfoo"
    assert [(f.name, f.distribution) for f in reg.failures if f.name == "fake-broken"] == [
        ("fake-broken", "fake-broken")
    ]
    assert reg.plugin_versions()["fake-good"] == ("fake-good", "1.2.3")
    (tmp_path / "x.fake").write_bytes(b"anything")
    assert dlformats.read(tmp_path / "x.fake").metadata["format"] == "fake"
    (tmp_path / "x.unknown").write_bytes(b"anything")
    with pytest.raises(NoReaderError) as info:
        dlformats.read(tmp_path / "x.unknown")
    assert "fake-broken" in info.value.failed_plugins and "needs libfoo" in str(info.value)


def test_failing_plugin_listed_by_the_command(fake_site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")])}
    env.pop("DLFORMATS_DISABLE_PLUGINS", None)
    cmd = [sys.executable, "-m", "dlformats.cli", "formats"]
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert {"plugin": "fake-broken", "distribution": "fake-broken", "error": "ImportError: needs libfoo"} in listing[
        "failed_plugins"
    ]
    fake = [f for f in listing["formats"] if f["name"] == "fake"]
    assert fake and fake[0]["distribution"] == "fake-good" and fake[0]["version"] == "1.2.3"
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False).stdout
    assert "FAILED plugin fake-broken (fake-broken): ImportError: needs libfoo" in text


def test_entry_points_blocked_by_environment(fake_site, monkeypatch):
    monkeypatch.setenv("DLFORMATS_DISABLE_PLUGINS", "fake-good,fake-broken")
    reg = Registry()
    assert "fake" not in [f.name for f in reg.formats()]
    assert {"fake-good", "fake-broken"} <= set(reg.blocked)
    assert "fake-broken" not in reg.failed_plugins()  # blocked plugins are not even imported


def test_two_distributions_declaring_one_format_name(tmp_path, monkeypatch):
    n = next(_names)
    root = tmp_path / "site"
    for dist in ("clash-one", "clash-two"):
        module = f"dlformats_{dist.replace('-', '_')}{n}"
        make_dist(root, dist, {dist: module}, {module: GOOD_PLUGIN.format(name="clash", ext=".c")})
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(PluginError) as info:
        Registry(disabled=set()).formats()
    assert info.value.distributions == ["clash-one", "clash-two"]
    monkeypatch.setenv("DLFORMATS_DISABLE_PLUGINS", "clash-two")
    assert [f.distribution for f in Registry().formats() if f.name == "clash"] == ["clash-one"]


def test_discovery_is_lazy_and_once(fake_site):
    code = (
        "import sys, dlformats; assert 'dlformats.registry' not in sys.modules; "
        "from dlformats.registry import get_registry; r = get_registry(); assert get_registry() is r; "
        "first = r.formats(); assert r.formats() == first; print(len(r.failures))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")])}
    env.pop("DLFORMATS_DISABLE_PLUGINS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the broken fake, listed once however often formats are asked for
