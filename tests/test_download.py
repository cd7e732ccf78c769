"""Downloading an ``http(s)://`` source: right data or a typed error naming the URL, never a leftover folder.

Every server here is started by the test on 127.0.0.1: raw sockets, so that a response can be
cut, trickled or malformed at will.  Each case is bounded in time (small ``download_seconds``,
servers that give up after a few seconds) and ends by checking that no ``dlformats-download-*``
folder is left in the temporary folder.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dlformats
from dlformats.errors import CorruptFileError, LimitExceededError, NetworkError

SPOTS = 1000
CSV = b"x,y,cellID\n" + b"".join(f"{i}.5,{2 * i}.25,{i % 7}\n".encode() for i in range(SPOTS))
HALF = CSV[: CSV.index(b"\n", len(CSV) // 2) + 1]  # cut at a line end: a valid CSV, with fewer spots


# ------------------------------------------------------------------ a raw HTTP server
Respond = Callable[["RawServer", socket.socket, str], None]


class RawServer:
    """Accepts connections on 127.0.0.1; reads each request's head and lets ``respond`` write any bytes."""

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.paths: list[str] = []
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode("ascii")
            self.paths.append(path)
            self.respond(self, conn, path)
        except OSError:  # the client went away: what the test expects of it
            pass
        finally:
            conn.close()

    def wait(self, seconds: float) -> bool:
        """Sleep; True when the test is over and the response should stop."""
        return self.stop.wait(seconds)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], RawServer]]:
    servers: list[RawServer] = []

    def start(respond: Respond, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(respond, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def tmp(tmp_path, monkeypatch) -> Path:
    """The temporary folder downloads go to, so that the tests see what is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("dlformats-download-"))


def sends(data: bytes) -> Respond:
    """A response of fixed bytes, then the connection is closed."""

    def respond(server: RawServer, conn: socket.socket, path: str) -> None:
        conn.sendall(data)

    return respond


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), b"".join(extra)) + body


def chunked(body: bytes, size: int = 4000) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"


# ------------------------------------------------------------------ right data
@pytest.mark.parametrize(
    "response",
    [ok(CSV), chunked(CSV), b"HTTP/1.0 200 OK\r\n\r\n" + CSV],
    ids=["content-length", "chunked", "until-close"],
)
def test_good_download_reads_every_spot(serve, tmp, response):
    server = serve(sends(response))
    project = dlformats.read(f"{server.base}/spots.csv")
    spots = project.spots
    assert len(spots) == SPOTS
    assert (spots.x[999], spots.y[999], spots.columns["cellID"][999]) == (999.5, 1998.25, 999 % 7)
    assert project.provenance["spots"].source == f"{server.base}/spots.csv"
    del project, spots
    gc.collect()
    assert leftovers(tmp) == []


def test_a_redirect_to_http_is_followed(serve, tmp):
    def respond(server: RawServer, conn: socket.socket, path: str) -> None:
        if path == "/old":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /new/spots.csv\r\nContent-Length: 0\r\n\r\n")
        else:
            conn.sendall(ok(CSV))

    server = serve(respond)
    assert len(dlformats.read(f"{server.base}/old").spots) == SPOTS
    assert server.paths == ["/old", "/new/spots.csv"]
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ incomplete data
def test_body_shorter_than_its_content_length_is_truncated(serve, tmp):
    server = serve(sends(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(CSV) + HALF))
    url = f"{server.base}/spots.csv"
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(url)
    assert err.value.path == url
    assert f"truncated: {len(HALF):,} of {len(CSV):,} bytes" in str(err.value)
    assert leftovers(tmp) == []


def test_chunked_body_cut_inside_a_chunk(serve, tmp):
    cut = chunked(CSV)[: len(chunked(CSV)) // 2]
    server = serve(sends(cut))
    url = f"{server.base}/spots.csv"
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(url)
    assert err.value.path == url and "truncated" in str(err.value)
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ too slow, too big
def trickle(head: bytes, drip: bytes) -> Respond:
    """Send ``head`` at once, then ``drip`` one byte every 0.2 s (6 s at most)."""

    def respond(server: RawServer, conn: socket.socket, path: str) -> None:
        conn.sendall(head)
        for byte in drip[:30]:
            if server.wait(0.2):
                return
            conn.sendall(bytes([byte]))

    return respond


@pytest.mark.parametrize(
    ("head", "drip"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(CSV), CSV),
        (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 100),
    ],
    ids=["body", "headers"],
)
def test_a_trickling_server_meets_the_deadline(serve, tmp, head, drip):
    server = serve(trickle(head, drip))
    url = f"{server.base}/spots.csv"
    start = time.monotonic()
    with pytest.raises(NetworkError) as err:
        dlformats.read(url, limits=dlformats.Limits(download_seconds=1.5))
    elapsed = time.monotonic() - start
    assert err.value.path == url and "timed out" in str(err.value)
    assert elapsed < 3.5  # the deadline is for the whole download, not for each byte
    assert leftovers(tmp) == []


def test_oversize_download(serve, tmp):
    server = serve(sends(ok(CSV)))
    url = f"{server.base}/spots.csv"
    with pytest.raises(LimitExceededError) as err:
        dlformats.read(url, limits=dlformats.Limits(download_bytes=1000))
    assert err.value.limit == "download_bytes" and err.value.path == url
    assert leftovers(tmp) == []


def test_http_404(serve, tmp):
    server = serve(sends(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"))
    url = f"{server.base}/spots.csv"
    with pytest.raises(CorruptFileError) as err:
        dlformats.read(url)
    assert err.value.path == url and "HTTP 404 Not Found" in str(err.value)
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ redirects
@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_a_redirect_away_from_http_is_refused(serve, tmp, scheme):
    with socket.create_server(("127.0.0.1", 0)) as elsewhere:  # a port the redirect points at
        port = elsewhere.getsockname()[1]
        target = f"ftp://127.0.0.1:{port}/spots.csv" if scheme == "ftp" else "file:///etc/hostname"
        server = serve(sends(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % target.encode()))
        url = f"{server.base}/spots.csv"
        with pytest.raises(NetworkError) as err:
            dlformats.read(url, limits=dlformats.Limits(download_seconds=2))
        assert err.value.path == url and target in str(err.value) and "redirect" in str(err.value)
        elsewhere.settimeout(0)
        with pytest.raises(BlockingIOError):
            elsewhere.accept()  # nobody came: the redirect was not followed
    assert leftovers(tmp) == []


def test_endless_redirects_are_cut_off(serve, tmp):
    def respond(server: RawServer, conn: socket.socket, path: str) -> None:
        hop = int(path.rsplit("/", 1)[1])
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /hop/%d\r\nContent-Length: 0\r\n\r\n" % (hop + 1))

    server = serve(respond)
    url = f"{server.base}/hop/0"
    with pytest.raises(NetworkError) as err:
        dlformats.read(url)
    assert err.value.path == url and "redirects" in str(err.value) and "\n" not in str(err.value)
    assert len(server.paths) == 11  # the first request and 10 redirects
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ broken protocol
BROKEN = {
    "bad-status-line": b"NOT HTTP AT ALL\r\n\r\n",
    "long-header-line": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    "too-many-headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
    "no-answer": b"",
}


@pytest.mark.parametrize("response", list(BROKEN.values()), ids=list(BROKEN))
def test_a_broken_response_is_a_network_error(serve, tmp, response):
    server = serve(sends(response))
    url = f"{server.base}/spots.csv"
    with pytest.raises(NetworkError) as err:
        dlformats.read(url)
    assert err.value.path == url and str(err.value).startswith(f"{url}: download failed: ")
    assert "\n" not in str(err.value)
    assert leftovers(tmp) == []


def test_nobody_listening(tmp):
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/spots.csv"
    with pytest.raises(NetworkError) as err:
        dlformats.read(url)
    assert err.value.path == url and "refused" in str(err.value).lower()
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_during_a_download_leaves_nothing(serve, tmp):
    assert threading.current_thread() is threading.main_thread()  # signals go to the main thread
    sending = threading.Event()

    def respond(server: RawServer, conn: socket.socket, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):  # 5 s at most
            conn.sendall(b"x")
            sending.set()
            if server.wait(0.05):
                return

    def interrupt() -> None:
        if sending.wait(5):
            time.sleep(0.2)  # well inside the transfer
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    server = serve(respond)
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        dlformats.read(f"{server.base}/spots.csv", limits=dlformats.Limits(download_seconds=10))
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ https
# A self-signed certificate for 127.0.0.1, valid 2000-2999, made for these tests only.
LOCALHOST_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBtzCCAV2gAwIBAgIUTW/6emgwA4PDkW1HKsmdofWhYRgwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTAwMDEwMTAwMDAwMFoYDzI5OTkxMjMx
MDAwMDAwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARUK6lTb6VckMus6tWTCHSE2zpo5x2xO+0NpOaR/yFetHmw5SQCiWZW
KM5CZVwjr409hCfHRVoVRY86FXMAuDkPo4GKMIGHMA8GA1UdEQQIMAaHBH8AAAEw
DwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAoQwEwYDVR0lBAwwCgYIKwYB
BQUHAwEwHQYDVR0OBBYEFFvsdxBFsOQFxHWj5i5+rlCeK7cpMB8GA1UdIwQYMBaA
FFvsdxBFsOQFxHWj5i5+rlCeK7cpMAoGCCqGSM49BAMCA0gAMEUCIQDWIZyCc8B+
6qEAWXcMWDFGPNYrT4gkMETquv50lVleywIgDe5DTn9iG9PEpLQQcX3l7mrJhBHl
VPQHpDSVtdYHvrI=
-----END CERTIFICATE-----
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwvdNc9jJHlS++ulM
PIgobo0fbyyN2YK4zap0N9D//iKhRANCAARUK6lTb6VckMus6tWTCHSE2zpo5x2x
O+0NpOaR/yFetHmw5SQCiWZWKM5CZVwjr409hCfHRVoVRY86FXMAuDkP
-----END PRIVATE KEY-----
"""


@pytest.fixture
def tls(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A server context for 127.0.0.1 whose certificate the client trusts (through ``SSL_CERT_FILE``)."""
    pem = tmp_path / "localhost.pem"
    pem.write_text(LOCALHOST_PEM)
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    return context


def test_https_download(serve, tmp, tls):
    server = serve(sends(ok(CSV)), tls)
    assert len(dlformats.read(f"{server.base}/spots.csv").spots) == SPOTS
    assert leftovers(tmp) == []


def test_https_trickle_meets_the_deadline(serve, tmp, tls):
    server = serve(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(CSV), CSV), tls)
    with pytest.raises(NetworkError, match="timed out"):
        dlformats.read(f"{server.base}/spots.csv", limits=dlformats.Limits(download_seconds=1.5))
    assert leftovers(tmp) == []


def test_https_untrusted_certificate(serve, tmp, tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE")
    server = serve(sends(ok(CSV)), tls)
    url = f"{server.base}/spots.csv"
    with pytest.raises(NetworkError) as err:
        dlformats.read(url)
    assert err.value.path == url and "certificate verify failed" in str(err.value)
    assert leftovers(tmp) == []


# ------------------------------------------------------------------ the command line
def test_cli_names_the_url_in_one_line(serve, tmp_path):
    server = serve(sends(BROKEN["bad-status-line"]))
    url = f"{server.base}/spots.csv"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out.zip"
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-m", "dlformats.cli", "convert", url, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4, done.stderr  # the network failed: the machine, not the input
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dlformats: error: {url}: download failed: "), done.stderr
    assert not out.exists() and leftovers(tmp) == []
