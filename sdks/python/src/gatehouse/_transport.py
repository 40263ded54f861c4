"""One HTTP exchange with the daemon, over TCP or its Unix socket, sync (`http.client`, one kept-alive
connection per thread) and async (asyncio streams, kept-alive connections pooled per event loop).

Every failure is classified the way the Rust client does it, so the caller knows what a retry risks:
`NotSent` (connecting failed: the daemon never saw the request), `Interrupted` (the connection broke
after the request may have arrived), or a final `GatehouseError` (timeout, an error status, garbage).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import sys
import threading
import weakref
from typing import Any

from ._config import Endpoint
from ._errors import GatehouseApiError, GatehouseError, GatehouseTimeout, GatehouseUnavailable

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT = 5.0
USER_AGENT = "gatehouse-python/0.1.0"
_SNIPPET = 200
_timeout = getattr(asyncio, "timeout", None) if sys.version_info >= (3, 11) else None


class NotSent(Exception):
    """Connecting failed: the request never reached the daemon."""


class Interrupted(Exception):
    """The connection failed after the request may have reached the daemon."""


# One encoder, made once: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def encode_body(body: dict[str, Any]) -> bytes:
    try:
        return _ENCODER.encode(body).encode()
    except (TypeError, ValueError) as err:
        raise GatehouseError(f"the check cannot be sent as JSON: {err}") from None


def decode(status: int, body: bytes) -> Any:
    """A 2xx body as JSON; any other status as `GatehouseApiError`."""
    if 200 <= status < 300:
        try:
            return json.loads(body)
        except ValueError as err:
            raise GatehouseUnavailable(
                f"unexpected response from the gatehouse daemon: {status} body is not JSON: {err}"
            ) from None
    try:
        error = json.loads(body)["error"]
        return_error = GatehouseApiError(status, str(error["code"]), str(error["message"]), error.get("field"))
    except (ValueError, KeyError, TypeError):
        snippet = body[:_SNIPPET].decode("utf-8", "replace")
        return_error = GatehouseApiError(status, "unknown", snippet)
    raise return_error


class _TcpConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class SyncTransport:
    """Sends requests on a kept-alive connection per thread; a broken one is dropped."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._local = threading.local()
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if endpoint.token:
            self._headers["Authorization"] = f"Bearer {endpoint.token}"

    def _connection(self, limit: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            timeout = min(CONNECT_TIMEOUT, limit)
            if self.endpoint.socket_path is not None:
                conn = _UnixConnection(self.endpoint.socket_path, timeout)
            else:
                conn = _TcpConnection(self.endpoint.host, self.endpoint.port, timeout=timeout)
            try:
                conn.connect()
            except socket.timeout:
                conn.close()
                raise NotSent("connecting to the gatehouse daemon timed out") from None
            except OSError as err:
                conn.close()
                raise NotSent(f"gatehouse daemon unreachable: {err}") from None
            self._local.conn = conn
        if conn.sock is not None:
            conn.sock.settimeout(limit)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def request(self, method: str, path: str, body: bytes | None, limit: float) -> Any:
        """One exchange bounded (per socket operation) by `limit` seconds; never retried here."""
        conn = self._connection(limit)
        try:
            conn.request(method, self.endpoint.prefix + path, body=body, headers=self._headers)
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
                raise GatehouseUnavailable(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            data = response.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                raise GatehouseUnavailable(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            if response.will_close:
                self.close()
            return decode(response.status, data)
        except socket.timeout:
            self.close()
            raise GatehouseTimeout("timed out waiting for the gatehouse daemon") from None
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError) as err:
            self.close()
            raise Interrupted(f"connection to the gatehouse daemon lost: {err!r}") from None
        except http.client.HTTPException as err:
            self.close()
            raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {err!r}") from None
        except OSError as err:
            self.close()
            raise Interrupted(f"connection to the gatehouse daemon lost: {err}") from None
        except GatehouseError:
            # An answer we understood (an error status, garbage): the connection may be fine,
            # but a daemon that answers garbage is not worth reusing.
            self.close()
            raise


class AsyncTransport:
    """Kept-alive connections, pooled per event loop; one in use per request in flight. A
    connection whose exchange did not end cleanly (an error, a timeout, a cancellation) is closed,
    never reused."""

    MAX_IDLE = 8

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        auth = f"Authorization: Bearer {endpoint.token}\r\n" if endpoint.token else ""
        self._head = (
            f"Host: {endpoint.host_header}\r\nUser-Agent: {USER_AGENT}\r\n{auth}"
            "Content-Type: application/json\r\n"
        )
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        ] = weakref.WeakKeyDictionary()

    async def request(self, method: str, path: str, body: bytes | None, limit: float) -> Any:
        """One exchange bounded as a whole by `limit` seconds; never retried here."""
        try:
            if _timeout is not None:
                # asyncio.timeout (3.11+) needs no extra task, unlike wait_for.
                async with _timeout(limit):
                    return await self._exchange(method, path, body)
            return await asyncio.wait_for(self._exchange(method, path, body), limit)
        except (asyncio.TimeoutError, TimeoutError):
            raise GatehouseTimeout("timed out waiting for the gatehouse daemon") from None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self.endpoint.socket_path is not None:
                return await asyncio.open_unix_connection(self.endpoint.socket_path)
            return await asyncio.open_connection(self.endpoint.host, self.endpoint.port)
        except OSError as err:
            raise NotSent(f"gatehouse daemon unreachable: {err}") from None

    async def _exchange(self, method: str, path: str, body: bytes | None) -> Any:
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        reader, writer = idle.pop() if idle else await self._connect()
        reusable = False
        try:
            payload = body or b""
            head = f"{method} {self.endpoint.prefix}{path} HTTP/1.1\r\n{self._head}Content-Length: {len(payload)}\r\n\r\n"
            writer.write(head.encode("latin-1") + payload)
            await writer.drain()
            status, data, reusable = await _read_response(reader)
            return decode(status, data)
        except (ConnectionError, asyncio.IncompleteReadError) as err:
            raise Interrupted(f"connection to the gatehouse daemon lost: {err!r}") from None
        except asyncio.LimitOverrunError:
            raise GatehouseUnavailable("unexpected response from the gatehouse daemon: headers too long") from None
        finally:
            if reusable and len(idle) < self.MAX_IDLE:
                idle.append((reader, writer))
            else:
                writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Reads one whole response: status, body, and whether the connection may carry another."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            raise Interrupted("the gatehouse daemon closed the connection without answering") from None
        raise
    status_line, _, fields = head[:-4].partition(b"\r\n")
    status_parts = status_line.split(b" ", 2)
    if len(status_parts) < 2 or not status_parts[0].startswith(b"HTTP/1.") or not status_parts[1].isdigit():
        shown = status_line[:_SNIPPET].decode("latin-1")
        raise GatehouseUnavailable(f"unexpected response from the gatehouse daemon: {shown!r}")
    status = int(status_parts[1])
    fields = b"\r\n" + fields.lower()
    keep = status_parts[0] == b"HTTP/1.1" and not (
        b"\r\nconnection:" in fields and b"close" in _field(fields, b"connection")
    )
    if b"\r\ntransfer-encoding:" in fields and b"chunked" in _field(fields, b"transfer-encoding"):
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                raise GatehouseUnavailable("unexpected response from the gatehouse daemon: bad chunk") from None
            if len(body) + size > MAX_RESPONSE_BYTES:
                raise GatehouseUnavailable(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, bytes(body), keep
            body += (await reader.readexactly(size + 2))[:-2]
    if b"\r\ncontent-length:" in fields:
        length = _field(fields, b"content-length").strip()
        if not length.isdigit():
            raise GatehouseUnavailable("unexpected response from the gatehouse daemon: bad Content-Length")
        if int(length) > MAX_RESPONSE_BYTES:
            raise GatehouseUnavailable(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        return status, await reader.readexactly(int(length)), keep
    # No length: the body ends with the connection.
    data = await reader.read(MAX_RESPONSE_BYTES + 1)
    while len(data) <= MAX_RESPONSE_BYTES:
        more = await reader.read(MAX_RESPONSE_BYTES + 1 - len(data))
        if not more:
            return status, data, False
        data += more
    raise GatehouseUnavailable(f"response larger than {MAX_RESPONSE_BYTES} bytes")


def _field(fields: bytes, name: bytes) -> bytes:
    """The value of the header `name` in lower-cased `fields` (each line starting with CRLF)."""
    start = fields.index(b"\r\n" + name + b":") + len(name) + 3
    end = fields.find(b"\r\n", start)
    return fields[start:] if end < 0 else fields[start:end]
