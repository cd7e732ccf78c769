"""The batch of ``test_batch`` on real Dask clusters started here on 127.0.0.1: a ``LocalCluster``
(through ``executor=`` and ``scheduler=``) and a scheduler plus worker processes started with the
``dask`` command (through ``dlformats batch --scheduler`` and ``DASK_SCHEDULER_ADDRESS``).
Each gives the same report as the local process pool.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_batch import FIXTURES, WARNING, make_lab, needs_fixtures

import dlformats

pytestmark = needs_fixtures


def comparable(report: dict, out: Path) -> list[tuple]:
    """The report without what differs between runs: seconds, and the output folder."""
    prefix = str(out) + os.sep
    return [
        (
            s["source"],
            s["labels"],
            s["status"],
            [o.removeprefix(prefix) for o in s["outputs"]],
            s["error_type"],
            s["error"],
            sorted(s["warnings"]),
        )
        for s in report["sources"]
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    assert FIXTURES is not None
    return make_lab(tmp_path_factory.mktemp("dask") / "lab")


@pytest.fixture(scope="module")
def reference(lab) -> list[tuple]:
    """What the default process pool reports for the lab folder."""
    out = lab.parent / "out-pool"
    dlformats.convert_many([lab], out, to="dcl-project-zip", recursive=True, jobs=2, report=lab.parent / "pool.json")
    report = json.loads((lab.parent / "pool.json").read_text())
    assert report["summary"]["failed"] == 4 and report["summary"]["converted"] == 10
    assert [s["warnings"] for s in report["sources"] if s["warnings"]] == [[WARNING.replace("lab/", f"{lab}/", 1)]]
    return comparable(report, out)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


def test_local_cluster_gives_the_same_report(lab, reference, cluster):
    from distributed import Client

    out = lab.parent / "out-executor"
    with Client(cluster, set_as_default=False) as client:
        results = dlformats.convert_many(
            [lab], out, to="dcl-project-zip", recursive=True, executor=client.get_executor(), report=out / "r.json"
        )
    assert comparable(json.loads((out / "r.json").read_text()), out) == reference
    assert all(Path(o).is_file() for r in results for o in r.outputs)

    out = lab.parent / "out-address"
    dlformats.convert_many(
        [lab], out, to="dcl-project-zip", recursive=True, scheduler=cluster.scheduler_address, report=out / "r.json"
    )
    assert comparable(json.loads((out / "r.json").read_text()), out) == reference


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("the scheduler did not start")


def test_scheduler_and_workers_started_apart_give_the_same_report(lab, reference):
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                  **quiet)]  # fmt: skip
    try:
        wait_for_port(port, processes[0])
        processes.append(
            subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"], **quiet)
        )
        out = lab.parent / "out-scheduler"
        env = {**os.environ, "DLFORMATS_NO_PROGRESS": "1"}
        args = [sys.executable, "-m", "dlformats.cli", "batch", str(lab), "--recursive", "--out", str(out)]
        args += ["--to", "dcl-project-zip", "--report", str(out / "r.json")]
        done = subprocess.run([*args, "--scheduler", address], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1, done.stderr
        assert comparable(json.loads((out / "r.json").read_text()), out) == reference
        # DASK_SCHEDULER_ADDRESS is the default scheduler: the rerun there skips everything converted.
        env["DASK_SCHEDULER_ADDRESS"] = address
        again = subprocess.run([*args, "--jobs", "1"], capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 1, again.stderr
        summary = json.loads((out / "r.json").read_text())["summary"]
        assert summary == {"converted": 0, "skipped": 10, "failed": 4}
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_an_unreachable_scheduler_is_a_network_error(tmp_path):
    import dask

    from dlformats.batch import _dask_executor

    port = free_port()
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(dlformats.NetworkError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"),
        _dask_executor(f"tcp://127.0.0.1:{port}"),
    ):
        raise AssertionError("not reached")
