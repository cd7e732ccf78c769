"""Fetching an ``http(s)://`` source into a temporary file: the whole body, in time, or a typed error.

One download is one temporary folder (``dlformats-download-*``) holding one file, removed on
every way out of :func:`_download` except success (then the :class:`~dlformats.sources.Source`
removes it when closed).  The rules:

* ``Limits.download_seconds`` bounds the whole transfer: connecting, the TLS handshake, the
  request, the headers, redirects and the body.  Each socket operation waits at most for the
  time left, so a server sending one byte a second is cut off at the deadline.
* ``Limits.download_bytes`` bounds the body, refused on its ``Content-Length`` when declared,
  counted as it comes otherwise.
* A body shorter than its ``Content-Length``, or a chunked body broken off, is
  :class:`~dlformats.errors.CorruptFileError` ("truncated"), never a complete file.
* Redirects are followed only to ``http`` and ``https`` URLs, at most :data:`MAX_REDIRECTS`.
* Network, protocol and TLS failures are :class:`~dlformats.errors.NetworkError`; HTTP error
  statuses are :class:`~dlformats.errors.CorruptFileError` ("HTTP 404 Not Found"); a full disk
  is an :class:`~dlformats.errors.EnvironmentFailureError`.  Each names the URL.

The network modules (``urllib.request``, ``http.client``, ``ssl``) are imported only when a
URL is read, so that ``import dlformats`` stays light.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptFileError,
    DLFormatsError,
    EnvironmentFailureError,
    InvalidOptionError,
    NetworkError,
    environment_error,
    usage,
)
from .limits import Limits

if TYPE_CHECKING:
    import socket
    import urllib.parse
    import urllib.request

    from .sources import Source

MAX_REDIRECTS = 10
"""Most redirects followed for one download."""

_CHUNK = 1 << 20
_NAME_BYTES = 200  # longest local file name kept from the URL (file systems allow 255)


def _download(url: str, limits: Limits) -> Source:
    """Download ``url`` into a new temporary folder; return it as a :class:`Source` that removes it when closed."""
    from .sources import Source

    filename = _local_name(_checked(url))
    try:
        folder = Path(tempfile.mkdtemp(prefix="dlformats-download-"))
    except OSError as exc:
        raise _disk_error(exc, tempfile.gettempdir(), url) from exc
    try:
        target = folder / filename
        _fetch(url, target, limits)
        return Source(name=url, path=target, filename=filename, limits=limits, cleanup=folder)
    except BaseException:  # KeyboardInterrupt included: nothing is left behind
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _checked(url: str) -> urllib.parse.SplitResult:
    """``url`` split into its parts, or :class:`InvalidOptionError` when it names no host or a bad port."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError as exc:
        raise InvalidOptionError(f"not a valid URL: {_shown(str(exc))}", path=url) from exc
    if not parts.hostname:
        raise InvalidOptionError("not a valid URL: no host", path=url)
    return parts


def _local_name(parts: urllib.parse.SplitResult) -> str:
    """The file name a URL's path ends with (for extension matching), safe to create in a fresh folder."""
    import urllib.parse

    name = os.path.basename(urllib.parse.unquote(parts.path))
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\")
    while len(name.encode("utf-8", "surrogatepass")) > _NAME_BYTES:
        name = name[1:]  # keep the end: the extensions
    return name if name not in ("", ".", "..") else "download"


class _Clock:
    """The deadline of one download."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises :class:`TimeoutError` when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


def _fetch(url: str, target: Path, limits: Limits) -> None:
    """Write the body of ``url`` to ``target``, or raise a typed error naming ``url``."""
    import http.client

    clock = _Clock(limits.download_seconds)
    try:
        with _opener(url, clock).open(url, timeout=clock.remaining()) as response:
            declared = response.length if isinstance(response, http.client.HTTPResponse) else None
            if declared is not None:
                limits.check("download_bytes", declared, "download too large", path=url)
            try:
                out = open(target, "wb")
            except OSError as exc:
                raise _disk_error(exc, str(target), url) from exc
            total = 0
            with out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except http.client.IncompleteRead as exc:
                        total += len(exc.partial)
                        raise CorruptFileError(
                            f"download truncated: the chunked body broke off after {total:,} bytes", path=url
                        ) from exc
                    if not chunk:
                        break
                    total += len(chunk)
                    limits.check("download_bytes", total, "download too large", path=url)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise _disk_error(exc, str(target), url) from exc
                try:
                    out.flush()
                except OSError as exc:
                    raise _disk_error(exc, str(target), url) from exc
    except DLFormatsError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _network_error(exc, url, clock) from exc
    if declared is not None and total < declared:
        raise CorruptFileError(f"download truncated: {total:,} of {declared:,} bytes", path=url)


# ------------------------------------------------------------------ the opener
def _opener(url: str, clock: _Clock) -> urllib.request.OpenerDirector:
    """An opener for http(s) only, whose connections keep to ``clock`` and whose redirects stay on http(s)."""
    import http.client
    import urllib.parse
    import urllib.request

    class Deadline:
        """Mixed into a connection: connect within the time left, then read and write through a :class:`_Timed`."""

        sock: Any
        timeout: float | None

        def connect(self) -> None:
            self.timeout = clock.remaining()
            super().connect()  # type: ignore[misc]
            self.sock = _Timed(self.sock, clock)

    class HTTPConnection(Deadline, http.client.HTTPConnection):
        pass

    class HTTPSConnection(Deadline, http.client.HTTPSConnection):
        pass

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]

    class Redirects(urllib.request.HTTPRedirectHandler):
        # urllib's own loop limits stay above ours, so that ours speaks first
        max_repeats = max_redirections = MAX_REDIRECTS + 1

        def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
            location = headers.get("location") or headers.get("uri")
            if location is not None:
                hops = getattr(req, "_dlformats_hops", 0)
                target = urllib.parse.urljoin(req.full_url, location.strip())
                scheme = urllib.parse.urlsplit(target).scheme.lower()
                problem = None
                if scheme not in ("http", "https"):
                    problem = f"the server redirected to {_shown(target)}; only http and https redirects are followed"
                elif hops >= MAX_REDIRECTS:
                    problem = f"more than {MAX_REDIRECTS} redirects (the last to {_shown(target)})"
                if problem is not None:
                    fp.close()
                    raise NetworkError(f"download failed: {problem}", path=url)
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None:
                new._dlformats_hops = getattr(req, "_dlformats_hops", 0) + 1
                fp.close()  # the body of a redirect is not read (it could be any size)
            return new

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),  # the http(s)_proxy environment, as urlopen
        HTTPHandler(),
        HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        Redirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class _Timed:
    """A connected socket whose every read and write waits at most for the time left on ``clock``."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self._sock = sock
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: Any, *flags: int) -> None:
        self._sock.settimeout(self._clock.remaining())
        self._sock.sendall(data, *flags)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "rb":
            return self._sock.makefile(mode, *args, **kwargs)
        return io.BufferedReader(_TimedReader(self._sock, self._clock))


class _TimedReader(io.RawIOBase):
    """The raw reading side of a :class:`_Timed` socket."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        super().__init__()
        self._raw = sock.makefile("rb", buffering=0)  # keeps the socket open until this is closed
        self._sock = sock
        self._clock = clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._clock.remaining())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


# ------------------------------------------------------------------ errors
def _network_error(exc: BaseException, url: str, clock: _Clock) -> DLFormatsError:
    """The typed error for a failure of the network, the server or the URL."""
    import http.client
    import socket
    import ssl
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        exc.close()
        return CorruptFileError(f"download failed: HTTP {exc.code} {_shown(str(exc.reason))}", path=url)
    if isinstance(exc, urllib.error.URLError):
        if isinstance(exc.reason, BaseException):
            return _network_error(exc.reason, url, clock)
        return NetworkError(f"download failed: {_shown(str(exc.reason))}", path=url)
    if isinstance(exc, TimeoutError):
        return NetworkError(
            f"download failed: timed out (download_seconds {clock.seconds:g} bounds the whole download)",
            path=url,
            hint=f"raise it with {usage('limit', 'download_seconds')} for a slow server",
        )
    if isinstance(exc, http.client.InvalidURL):
        return InvalidOptionError(f"not a valid URL: {_shown(str(exc))}", path=url)
    if isinstance(exc, http.client.RemoteDisconnected):
        return NetworkError("download failed: the server closed the connection without answering", path=url)
    if isinstance(exc, http.client.HTTPException):
        what = f"{type(exc).__name__}: {exc}"
        return NetworkError(f"download failed: the server broke the HTTP protocol ({_shown(what)})", path=url)
    if isinstance(exc, ssl.SSLError):
        return NetworkError(f"download failed: TLS error: {_shown(str(exc))}", path=url)
    if isinstance(exc, socket.gaierror):
        return NetworkError(f"download failed: cannot resolve the host name ({exc.strerror or exc})", path=url)
    if isinstance(exc, OSError):
        return NetworkError(f"download failed: {_shown(exc.strerror or str(exc))}", errno=exc.errno, path=url)
    return InvalidOptionError(f"not a valid URL: {_shown(str(exc))}", path=url)  # ValueError (e.g. the host's IDNA)


def _disk_error(exc: OSError, where: str, url: str) -> EnvironmentFailureError:
    """The typed error for failing to store a download at ``where`` (full disk, permissions...)."""
    error = environment_error(exc, path=where, doing="saving the download")
    if error is None:
        error = EnvironmentFailureError(
            f"saving the download to {where}: {exc.strerror or exc}", errno=exc.errno, path=where
        )
    error.path = url
    return error


def _shown(text: str, limit: int = 300) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
