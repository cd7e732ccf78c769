"""Hostile inputs: typed errors naming the file, bounded memory and time, nothing written where it should not be.

Every case of ``cases.py`` is written to its own folder and run through
``dlformats.read_all`` and ``dlformats.convert(case, out_dir / "out.zip")`` in a child
process (``child.py``) under a 1.5 GiB address-space cap, a 20 s limit per case and an
audit hook that records any write outside the output folder, any socket, process or
unpickling.  Cases are batched: two children share the whole list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases as hostile_cases  # noqa: E402

CASES = hostile_cases.all_cases()
OLD_OUTPUT = b"an earlier output that a failed conversion must leave alone\n"
CHILDREN = 2
CHILD_SECONDS = 300


def _materialise(case: hostile_cases.Case, root: Path) -> dict[str, Any]:
    folder = root / case.id
    (folder / "in").mkdir(parents=True)
    out_dir = folder / "out"
    out_dir.mkdir()
    input_path = folder / "in" / case.filename
    if case.tree is None:
        input_path.write_bytes(case.data)
    # a folder input (an OME-Zarr store); links["."] makes the input itself a link to where the files are
    store = input_path.parent / case.links["."] if "." in case.links else input_path
    for rel, data in (case.tree or {}).items():
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_bytes(data)
    for rel, target in case.links.items():
        link = input_path if rel == "." else store / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    for name, data in case.companions.items():
        (folder / "in" / name).write_bytes(data)
    labels = None
    if case.labels is not None:
        labels = folder / "in" / case.labels[0]
        labels.write_bytes(case.labels[1])
    expect_ok = case.expect == hostile_cases.OK
    if case.symlink_target:
        outside = folder / "outside.txt"
        outside.write_bytes(OLD_OUTPUT)
        (out_dir / case.out_name).symlink_to(outside)
    elif not expect_ok and (case.out_folder or case.out_name.endswith(".zarr")):  # an earlier output folder
        (out_dir / case.out_name).mkdir()
        (out_dir / case.out_name / "old.txt").write_bytes(OLD_OUTPUT)
    elif not expect_ok:
        (out_dir / case.out_name).write_bytes(OLD_OUTPUT)
    return {
        "id": case.id,
        "input": str(input_path),
        "labels": str(labels) if labels else None,
        "out_dir": str(out_dir),
        "out_name": case.out_name,
        "kwargs": case.kwargs,
        "convert_kwargs": case.convert_kwargs,
        "limits": case.limits,
        "expect_ok": expect_ok,
        "read_ok": case.read_ok,
        "check": case.check,
    }


def _run_children(specs: list[dict[str, Any]], root: Path) -> dict[str, dict[str, Any]]:
    """Run ``specs`` in ``CHILDREN`` child processes; a child that dies is replaced for the rest of its list."""
    results: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    queues = [specs[i::CHILDREN] for i in range(CHILDREN)]
    attempt = 0
    while any(queues):
        attempt += 1
        procs = []
        for n, queue in enumerate(queues):
            if not queue:
                continue
            manifest = root / f"manifest-{attempt}-{n}.json"
            manifest.write_text(json.dumps(queue), "utf-8")
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "child.py"), str(manifest)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append((proc, queue))
        next_queues = []
        for proc, queue in procs:
            try:
                out, err = proc.communicate(timeout=CHILD_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            started = None
            for line in out.splitlines():
                record = json.loads(line)
                if record.get("started"):
                    started = record["id"]
                else:
                    results[record["id"]] = record
                    started = None
            if started is not None or proc.returncode != 0:
                dead = started or "?"
                results.setdefault(dead, {"id": dead, "died": f"child exited {proc.returncode}: {err[-3000:]}"})
                done = set(results)
                next_queues.append([s for s in queue if s["id"] not in done])
        queues = next_queues
    return results


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    specs = [_materialise(case, root) for case in CASES]
    return _run_children(specs, root)


def _check_error(case: hostile_cases.Case, what: str, outcome: dict[str, Any]) -> None:
    got = outcome[what]
    allowed = tuple(case.expect)
    if got["type"] == "ok":
        assert hostile_cases.OK in allowed, f"{what} succeeded; expected one of {allowed}"
        return
    assert "DLFormatsError" in got.get("mro", []), f"{what}: not a DLFormatsError: {got}"
    assert got["type"] != "PluginCrashedError", f"{what}: a plugin crashed: {got['message']}\n{got['traceback']}"
    assert got["type"] in allowed, f"{what}: {got['type']} ({got['message']}); expected one of {allowed}"
    assert got["names_file"], f"{what}: the message does not name the file: {got['message']}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: hostile_cases.Case, outcomes: dict[str, dict[str, Any]]) -> None:
    if not case.known_gap:
        _check_case(case, outcomes)
        return
    try:
        _check_case(case, outcomes)
    except AssertionError as exc:
        pytest.xfail(f"{case.known_gap}: {str(exc)[:300]}")
    pytest.fail(f"known gap closed, remove known_gap from case {case.id}: {case.known_gap}")


def _check_case(case: hostile_cases.Case, outcomes: dict[str, dict[str, Any]]) -> None:
    outcome = outcomes.get(case.id)
    assert outcome is not None, "the child never reported this case"
    assert "died" not in outcome, outcome["died"]
    assert outcome["violations"] == [], outcome["violations"]
    if case.expect == hostile_cases.OK:
        assert outcome["read"]["type"] == "ok", outcome["read"]
        assert outcome["convert"]["type"] == "ok", outcome["convert"]
        # Exactly the requested output: no temporary file left beside it.
        assert set(outcome["after"]) == {case.out_name}, outcome["after"]
        facts = outcome["facts"]
        for key in ("X", "y", "spots"):
            if key in case.check:
                assert facts.get(key) == case.check[key], (key, facts)
        if "dtype" in case.check:
            assert facts["X_dtype"] == case.check["dtype"], facts
        back = outcome.get("readback", {})
        for key in ("X", "X_dtype", "X_sum", "y", "y_sum", "spots"):
            if key in facts and key in back:
                assert back[key] == facts[key], f"{key} changed by the conversion: {facts[key]} -> {back[key]}"
        if case.check.get("no_formula"):
            cells = [cell for line in outcome["output_text"].splitlines() for cell in line.split(",")]
            assert not [c for c in cells if c[:1] in "=+-@"], outcome["output_text"]
        return
    if case.read_ok:
        assert outcome["read"]["type"] == "ok", outcome["read"]
    elif not case.symlink_target:  # the input is fine there: only writing must fail
        _check_error(case, "read", outcome)
    _check_error(case, "convert", outcome)
    if outcome["convert"]["type"] != "ok":
        assert outcome["after"] == outcome["before"], "the output folder changed"
    if case.symlink_target:
        assert (Path(outcome["after"][case.out_name].split(" -> ", 1)[1])).read_bytes() == OLD_OUTPUT


def test_every_class_is_covered() -> None:
    counts = hostile_cases.counts()
    assert all(n > 0 for n in counts.values()), counts


def _canary_spec(root: Path, actions: list[str], **extra: Any) -> dict[str, Any]:
    case = hostile_cases.Case(
        "canary-" + "-".join(actions),
        "valid but odd",
        "image.npy",
        hostile_cases.npy([[1, 2], [3, 4]]),
        hostile_cases.OK,
    )
    spec = _materialise(case, root)
    outside = root / case.id / "outside.txt"
    outside.write_text("keep")
    return {**spec, "canary": actions, "outside": str(outside), **extra}


def test_harness_catches_what_it_guards_against(tmp_path: Path) -> None:
    """The hook, the memory cap and the time limit are in force: forbidden acts are seen or stopped."""
    specs = [
        _canary_spec(tmp_path, ["write_outside", "rename_outside", "socket", "pickle", "allocate"]),
        _canary_spec(tmp_path, ["sleep"], seconds=1),
    ]
    results = _run_children(specs, tmp_path)
    acts = results[specs[0]["id"]]
    assert acts["canary"]["allocate"] == "MemoryError"  # the address-space cap
    assert acts["canary"]["socket"] == "RuntimeError"  # refused by the hook
    assert acts["canary"]["pickle"] == "RuntimeError"
    seen = " ".join(acts["violations"])
    # os.replace raises the audit event "os.rename"; a socket is stopped at "socket.__new__".
    for what in ("open for writing outside", "os.rename outside", "socket.", "pickle.find_class"):
        assert what in seen, (what, acts["violations"])
    slow = results[specs[1]["id"]]
    assert slow["read"]["type"] == "timeout" and "canary" not in slow, slow
