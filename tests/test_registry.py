"""The plugin registry: which reader is chosen and why, isolation of broken plugins, blocking, the errors.

Unit tests build a ``Registry(load=False)`` and register stand-in plugins; integration tests
put fake distributions (a ``*.dist-info`` folder with an ``entry_points.txt``) on ``sys.path``
so that plugins are found through real entry points.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import dlformats
from dlformats import FormatSpec, NotMyFormat, Project, hookimpl, testing
from dlformats.errors import InvalidOptionError, NoReaderError, NoWriterError, PluginCrashedError, PluginError
from dlformats.registry import Registry, use_registry
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
    return testing.plugin_of(*specs)


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
def use():
    """Make ``dlformats.read`` & co. use the given registry until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda reg: stack.enter_context(use_registry(reg))


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
    with open_source(b"x", name="f.x") as src, pytest.raises(PluginCrashedError) as info:
        reg.reader_candidates(src)
    assert info.value.format == "crashy" and "sniffy" in str(info.value) and "f.x" in str(info.value)
    assert (info.value.stage, info.value.plugin) == ("sniff", "sniffy") and "sniffer" in str(info.value)
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
    with pytest.raises(PluginCrashedError) as info:
        dlformats.read(tmp_path / "f.x")
    assert info.value.format == "crashy" and "crasher" in str(info.value)
    assert (info.value.stage, info.value.plugin) == ("read", "crasher") and "reader" in str(info.value)
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


def test_same_format_name_twice_keeps_the_first_and_reports_the_second(use, tmp_path):
    reg = use(
        registry(
            ("one", fmt("dup", extensions=(".x",)), "dist-one"),
            ("two", [fmt("dup", extensions=(".x",)), fmt("other", extensions=(".o",))], "dist-two"),
        )
    )
    assert [(f.name, f.distribution) for f in reg.formats()] == [("dup", "dist-one"), ("other", "dist-two")]
    [failure] = reg.failures
    assert (failure.name, failure.distribution, failure.format) == ("two", "dist-two", "dup")
    assert "dist-one" in failure.error and "dist-two" in failure.error
    assert "DLFORMATS_PREFER=dup=two" in failure.error and "DLFORMATS_DISABLE_PLUGINS=one" in failure.error
    assert reg.failed_plugins() == {"two (format dup)": failure.error}
    (tmp_path / "f.o").write_bytes(b"data")
    assert dlformats.read(tmp_path / "f.o").metadata["read_by"] == "other"  # the plugin's other format works


def test_a_builtin_keeps_its_name_whatever_the_order():
    for entries in itertools.permutations([("a-third", fmt("png"), "someone"), ("b-builtin", fmt("png"), "dlformats")]):
        reg = registry(*entries)
        assert [(f.name, f.plugin) for f in reg.formats()] == [("png", "b-builtin")]
        assert [(f.name, f.format) for f in reg.failures] == [("a-third", "png")]
        assert "built-in formats keep their names" in reg.failures[0].error


def test_the_preferred_plugin_takes_a_contested_name():
    entries = [("builtin", fmt("png"), "dlformats"), ("fancy", fmt("png"), "Fancy_PNG")]
    by_plugin = Registry(load=False, disabled=set(), prefer={"png": "fancy"})
    by_distribution = Registry(load=False, disabled=set(), prefer={"png": "fancy-png"})
    for reg in (by_plugin, by_distribution):
        for name, spec, dist in entries:
            reg.register(plugin(spec), name, distribution=dist)
        assert [(f.name, f.plugin) for f in reg.formats()] == [("png", "fancy")]
        assert [(f.name, f.format) for f in reg.failures] == [("builtin", "png")]
    nobody = Registry(load=False, disabled=set(), prefer={"png": "absent"})
    for name, spec, dist in entries:
        nobody.register(plugin(spec), name, distribution=dist)
    assert [f.plugin for f in nobody.formats()] == ["builtin"]
    assert any(f.name == "absent" and "does not declare it" in f.error for f in nobody.failures)


def test_prefer_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DLFORMATS_PREFER", " png = fancy , npz=other-dist,junk")
    assert Registry(load=False).prefer == {"png": "fancy", "npz": "other-dist"}


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
    broken = {
        "plugin": "fake-broken",
        "distribution": "fake-broken",
        "format": None,
        "error": "ImportError: needs libfoo",
    }
    assert broken in listing["failed_plugins"]
    fake = [f for f in listing["formats"] if f["name"] == "fake"]
    assert fake and fake[0]["distribution"] == "fake-good" and fake[0]["version"] == "1.2.3"
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False).stdout
    assert "FAILED plugin fake-broken (fake-broken): ImportError: needs libfoo" in text


def _listing(eps) -> list[tuple[str, str, str, str]]:
    return sorted((e.name, e.value, e.distribution, e.version) for e in eps)


@pytest.mark.parametrize("group", ["dlformats.plugins", "console_scripts", "pytest11", "napari.manifest"])
def test_entry_point_scan_finds_what_importlib_metadata_finds(fake_site, group):
    """The start-up scan of dist-info folders lists what importlib.metadata lists, on the real environment."""
    from dlformats.registry import _entry_points, _entry_points_by_metadata

    fast = _listing(_entry_points(group))
    assert fast == _listing(_entry_points_by_metadata(group))
    if group == "dlformats.plugins":
        assert [e[2:] for e in fast if e[0] == "fake-good"] == [("fake-good", "1.2.3")]
        assert {"dcl-project-zip", "tiff", "ctc"} <= {e[0] for e in fast}


def test_entry_point_scan_egg_info_first_on_path_wins_and_fallback(tmp_path, monkeypatch):
    from dlformats import registry as reg_module

    first, second = tmp_path / "first", tmp_path / "second"
    make_dist(second, "shadowed", {"shadowed": "mod_b"}, {})
    (first / "Shadowed-0.9.dist-info").mkdir(parents=True)  # the same distribution, earlier on sys.path
    (first / "Shadowed-0.9.dist-info" / "METADATA").write_text("Name: Shadowed\nVersion: 0.9\n\nName: body\n")
    (first / "Shadowed-0.9.dist-info" / "entry_points.txt").write_text(
        "[other]\nx = y\n\n[dlformats.plugins]\n# a comment\nshadowed = mod_a:plugin.hooks [extra]\n"
    )
    egg = first / "legacy.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: legacy\nVersion: 4.5\n")
    (egg / "entry_points.txt").write_text("[dlformats.plugins]\nlegacy = legacy_mod\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    fast = [e for e in reg_module._entry_points("dlformats.plugins") if e.distribution in ("Shadowed", "legacy")]
    assert _listing(fast) == [
        ("legacy", "legacy_mod", "legacy", "4.5"),
        ("shadowed", "mod_a:plugin.hooks [extra]", "Shadowed", "0.9"),
    ]
    assert _listing(fast) == _listing(
        e for e in reg_module._entry_points_by_metadata("dlformats.plugins") if e.distribution in ("Shadowed", "legacy")
    )
    (first / "mod_a.py").write_text("import types\nplugin = types.SimpleNamespace(hooks='the hooks')\n")
    assert [e.load() for e in fast if e.name == "shadowed"] == ["the hooks"]
    # a zip on sys.path: importlib.metadata answers (it can look inside)
    (tmp_path / "some.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    monkeypatch.syspath_prepend(str(tmp_path / "some.zip"))
    called = []
    monkeypatch.setattr(reg_module, "_entry_points_by_metadata", lambda group: called.append(group) or [])
    assert reg_module._entry_points("dlformats.plugins") == [] and called == ["dlformats.plugins"]


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
    monkeypatch.delenv("DLFORMATS_PREFER", raising=False)
    reg = Registry(disabled=set())
    formats = {f.name: f for f in reg.formats()}
    assert formats["clash"].distribution == "clash-one"  # loaded first: entry points in order of name
    assert {"tiff", "png", "dcl-project-zip"} <= set(formats)  # every other format is there
    [lost] = [f for f in reg.failures if f.format == "clash"]
    assert lost.distribution == "clash-two" and "clash-one" in lost.error
    monkeypatch.setenv("DLFORMATS_PREFER", "clash=clash-two")
    assert [f.distribution for f in Registry().formats() if f.name == "clash"] == ["clash-two"]
    monkeypatch.delenv("DLFORMATS_PREFER")
    monkeypatch.setenv("DLFORMATS_DISABLE_PLUGINS", "clash-one")
    assert [f.distribution for f in Registry().formats() if f.name == "clash"] == ["clash-two"]


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


# ------------------------------------------------------------------ declarations checked when loaded
def _read_y(source, options):
    return _reader("any")(source, options)


BAD_DECLARATIONS = {
    "name": (FormatSpec(name="Bad Name", description="d", read=_read_y, reads=frozenset({"y"})), "name 'Bad Name'"),
    "extension": (
        FormatSpec(name="no-dot", description="d", extensions=("min",), read=_read_y, reads=frozenset({"y"})),
        "extension 'min' must be a dot",
    ),
    "reads missing": (FormatSpec(name="no-reads", description="d", read=_read_y), "reads must list the parts"),
    "writes without writer": (
        FormatSpec(name="no-writer", description="d", read=_read_y, reads=frozenset({"y"}), writes=frozenset({"y"})),
        "writes must list the parts",
    ),
    "unknown part": (
        FormatSpec(name="odd-part", description="d", read=_read_y, reads=frozenset({"y", "masks"})),
        "unknown parts ['masks']",
    ),
    "no description": (FormatSpec(name="mute", read=_read_y, reads=frozenset({"y"})), "description"),
    "neither": (FormatSpec(name="idle", description="d"), "neither reads nor writes"),
    "option type": (
        fmt("typed", read_options=(dlformats.Option("n", list, help="h"),)),
        "type <class 'list'> is not one of",
    ),
    "option default": (
        fmt("defaulted", read_options=(dlformats.Option("n", int, "three", help="h"),)),
        "default 'three' must be an integer",
    ),
    "option choice": (
        fmt("chosen", read_options=(dlformats.Option("c", str, "a", choices=("a", 2), help="h"),)),
        "choice 2 is not a str",
    ),
    "option reserved": (fmt("reserved", read_options=(dlformats.Option("select", str, help="h"),)), "core's own"),
    "option twice": (
        fmt("twice", read_options=(dlformats.Option("n", int, help="h"), dlformats.Option("n", str, help="h"))),
        "'n' is declared twice",
    ),
    "option help": (fmt("helpless", read_options=(dlformats.Option("n", int),)), "help must be one non-empty line"),
    "option name": (fmt("badopt", read_options=(dlformats.Option("Two Words", int, help="h"),)), "option name"),
    "index_of read": (
        fmt("indexed", read_options=(dlformats.Option("f", int, help="h", index_of="frames"),)),
        "index_of is for int write options",
    ),
    "write options without writer": (
        fmt("nowrite", write_options=(dlformats.Option("n", int, help="h"),)),
        "write_options given, but there is no writer",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DECLARATIONS))
def test_unsound_declaration_fails_that_format_alone(case, use, tmp_path):
    bad, reason = BAD_DECLARATIONS[case]
    assert bad.problems(), case
    reg = use(registry(("mixed", [bad, fmt("fine", extensions=(".x",))], "third"), ("other", fmt("also"), "d")))
    assert [f.name for f in reg.formats()] == ["also", "fine"]
    [failure] = reg.failures
    assert (failure.name, failure.distribution, failure.format) == ("mixed", "third", str(bad.name))
    assert failure.error.startswith("declaration refused: ") and reason in failure.error, failure.error
    (tmp_path / "f.x").write_bytes(b"data")
    assert dlformats.read(tmp_path / "f.x").metadata["read_by"] == "fine"
    (tmp_path / "f.unknown").write_bytes(b"data")
    with pytest.raises(NoReaderError) as info:
        dlformats.read(tmp_path / "f.unknown")
    assert info.value.failed_plugins == {f"mixed (format {bad.name})": failure.error}
    assert reason in str(info.value)


def test_asking_for_a_refused_format_says_why():
    reg = registry(("mixed", [FormatSpec(name="broken", description="d", read=_read_y)], "third-dist"))
    with pytest.raises(PluginError) as info:
        reg.get("broken")
    assert info.value.plugins == ["mixed"] and info.value.distributions == ["third-dist"]
    assert "reads must list the parts" in str(info.value)
    with pytest.raises(InvalidOptionError, match="known formats: none"):
        reg.get("never-declared")


def test_declaring_something_else_than_formatspecs_fails_the_item_or_the_plugin():
    reg = registry(("good", fmt("good"), "d"))
    mixed = [fmt("kept"), {"name": "a dict"}]
    reg.register(types.SimpleNamespace(dlformats_formats=hookimpl(lambda: mixed)), "mixed", distribution="m")
    reg.register(types.SimpleNamespace(dlformats_formats=hookimpl(lambda: fmt("bare"))), "bare", distribution="b")
    assert [f.name for f in reg.formats()] == ["good", "kept"]
    failed = reg.failed_plugins()
    assert "returned a dict (item 1), not FormatSpec" in failed["mixed"]
    assert "returned a FormatSpec, not a list" in failed["bare"]


# ------------------------------------------------------------------ hooks through pluggy
class _Renamed:
    """Hook implementations under other names, found through ``specname``."""

    @hookimpl(specname="dlformats_formats")
    def declare(self):
        return [fmt("renamed", extensions=(".rn",))]

    @hookimpl(specname="dlformats_validate")
    def check(self, project):
        return [dlformats.Problem("cells", "checked by a renamed hook", "warning")]


def test_hookimpl_marked_with_specname_works(use, tmp_path):
    reg = use(registry())
    reg.register(_Renamed(), "renamed-plugin", distribution="r")
    assert [f.name for f in reg.formats()] == ["renamed"] and not reg.failures
    (tmp_path / "f.rn").write_bytes(b"data")
    project = dlformats.read(tmp_path / "f.rn")
    assert project.metadata["read_by"] == "renamed"
    assert "checked by a renamed hook" in [p.message for p in dlformats.validate(project, pixels=False)]


def _unmarked():
    return [fmt("unmarked")]


def _not_a_hook():
    return [fmt("typo")]


def _wants_config(config):
    return [fmt("config")]


def _wrapper():
    yield
    return [fmt("wrapped")]


@pytest.mark.parametrize(
    ("plugin_object", "reason"),
    [
        (types.SimpleNamespace(dlformats_formats=_unmarked), "dlformats_formats is not marked @hookimpl"),
        (types.SimpleNamespace(dlformats_format=hookimpl(_not_a_hook)), "not a dlformats hook"),
        (types.SimpleNamespace(declare=hookimpl(specname="dlformats_formatz")(_not_a_hook)), "'dlformats_formatz'"),
        (types.SimpleNamespace(dlformats_formats=hookimpl(_wants_config)), "config"),
        (types.SimpleNamespace(dlformats_formats=hookimpl(wrapper=True)(_wrapper)), "hook wrapper"),
    ],
    ids=["unmarked", "unknown hook", "unknown specname", "unknown argument", "wrapper"],
)
def test_hook_implementation_not_fitting_the_specs_fails_its_plugin(plugin_object, reason):
    reg = registry(("good", fmt("good"), "d"))
    reg.register(plugin_object, "misfit", distribution="misfit-dist")
    assert [f.name for f in reg.formats()] == ["good"]
    assert [(f.name, f.distribution) for f in reg.failures] == [("misfit", "misfit-dist")]
    assert reason in reg.failures[0].error and "\n" not in reg.failures[0].error
    reg.register(plugin(fmt("late")), "misfit", distribution="d")  # the name was not kept by the refused plugin
    assert [f.name for f in reg.formats()] == ["good", "late"]


def test_registering_one_name_twice_is_reported():
    reg = registry(("same", fmt("first"), "d"))
    reg.register(plugin(fmt("second")), "same", distribution="other")
    assert [f.name for f in reg.formats()] == ["first"]
    assert "same" in reg.failed_plugins()


# ------------------------------------------------------------------ a third-party distribution that gets it wrong
CARELESS_PLUGIN = """
from dlformats import FormatSpec, hookimpl
from dlformats.spec import parts

def _read(source, options):
    raise AssertionError("never called")

def _read_good(source, options):
    import numpy as np
    from dlformats import Project
    return Project(y=np.zeros((1, 1, 2, 2), np.int32), cells=[])

@hookimpl
def dlformats_formats():
    return [
        FormatSpec(name="png", description="a png reader of its own", extensions=(".png",), read=_read,
                   reads=parts("X")),
        FormatSpec(name="Bad Name", description="malformed", extensions=("min",), read=_read),
        FormatSpec(name="careful", description="fine", extensions=(".careful",), read=_read_good, reads=parts("y")),
    ]
"""


@pytest.fixture
def careless_site(tmp_path, monkeypatch):
    """An installed distribution declaring a taken name (png), a malformed format and a sound one."""
    module = f"dlformats_careless{next(_names)}"
    root = tmp_path / "careless-site"
    make_dist(root, "careless-formats", {"careless": module}, {module: CARELESS_PLUGIN})
    monkeypatch.syspath_prepend(str(root))
    return root


def test_a_careless_distribution_is_reported_and_every_other_format_converts(careless_site, tmp_path):
    import numpy as np
    import tifffile

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(careless_site), os.environ.get("PYTHONPATH", "")])}
    for name in ("DLFORMATS_DISABLE_PLUGINS", "DLFORMATS_PREFER"):
        env.pop(name, None)
    cli = [sys.executable, "-m", "dlformats.cli"]

    def run(*args):
        return subprocess.run([*cli, *args], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)

    listing = json.loads(run("formats", "--json").stdout)
    failed = {f["format"]: f for f in listing["failed_plugins"]}
    assert set(failed) == {"png", "Bad Name"}
    assert failed["png"]["distribution"] == "careless-formats" and "'dlformats'" in failed["png"]["error"]
    assert "name 'Bad Name'" in failed["Bad Name"]["error"] and "extension 'min'" in failed["Bad Name"]["error"]
    assert "reads must list the parts" in failed["Bad Name"]["error"]
    formats = {f["name"]: f for f in listing["formats"]}
    assert formats["png"]["distribution"] == "dlformats" and formats["careful"]["distribution"] == "careless-formats"
    text = run("formats").stdout
    assert "FAILED format png of plugin careless (careless-formats): format name 'png' is taken" in text

    tifffile.imwrite(tmp_path / "movie.tif", np.arange(2 * 8 * 9, dtype=np.uint16).reshape(2, 8, 9))
    for target in ("movie.zip", "frame.png"):
        done = run("convert", "movie.tif", target, "--write-option", "frame=1" if target.endswith("png") else "part=X")
        if target.endswith("zip"):
            assert done.returncode == 2 and "unknown write option 'part'" in done.stderr  # checked, not ignored
            done = run("convert", "movie.tif", target)
        assert done.returncode == 0, done.stderr
    assert run("info", "frame.png").returncode == 0  # read by the built-in png
    (tmp_path / "x.careful").write_bytes(b"anything")
    assert '"format": "careful"' in run("info", "x.careful", "--json").stdout
    (tmp_path / "x.min").write_bytes(b"\x00\x01")
    done = run("info", "x.min")
    assert (
        done.returncode == 2 and "careless (format Bad Name)" in done.stderr and "careless (format png)" in done.stderr
    )


def test_no_writer_at_all_says_so():
    with pytest.raises(NoWriterError) as info:
        Registry(load=False).writer_for("out.zip")
    assert "one of  or" not in str(info.value) and "no installed plugin writes" in str(info.value)
