"""Where the daemon is and which token to send: arguments, then the environment, then the data
directory's `agent.token` (the same order as the `gatehouse` CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._errors import GatehouseConfigError

DEFAULT_URL = "http://127.0.0.1:7400"
AGENT_TOKEN_FILE = "agent.token"


@dataclass(frozen=True)
class Endpoint:
    """A resolved daemon address: TCP host and port (plus a path prefix), or a Unix socket."""

    host: str
    port: int
    prefix: str
    socket_path: str | None
    token: str

    @property
    def host_header(self) -> str:
        # The daemon checks Host exactly, with the port (docs/API.md, "The Host rule").
        if self.socket_path is not None:
            return "localhost"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def data_dir() -> Path:
    """`GATEHOUSE_DATA_DIR`, else `$XDG_DATA_HOME/gatehouse`, else `~/.local/share/gatehouse`."""
    explicit = os.environ.get("GATEHOUSE_DATA_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "gatehouse"
    return Path(os.environ.get("HOME", ".")) / ".local" / "share" / "gatehouse"


def resolve(url: str | None, token: str | None) -> Endpoint:
    """Resolves the endpoint; raises `GatehouseConfigError` with what to fix."""
    if url is None:
        url = os.environ.get("GATEHOUSE_URL") or None
    if url is None and os.environ.get("GATEHOUSE_SOCKET"):
        url = "unix:" + os.environ["GATEHOUSE_SOCKET"]
    url = (url or DEFAULT_URL).strip()
    is_socket = url.startswith("unix:")
    if token is None:
        token = _token_from_env_or_file(required=not is_socket)
    token = token.strip()
    if token and not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise GatehouseConfigError("invalid token: a token is visible ASCII without spaces")
    if is_socket:
        path = url[len("unix:") :]
        if not path:
            raise GatehouseConfigError(
                "`unix:` needs the socket's path, like unix:/run/gatehouse/check.sock"
            )
        return Endpoint("localhost", 0, "", path, token)
    parts = urlsplit(url)
    problem = None
    if parts.scheme != "http":
        problem = "only plain http is supported (the daemon listens on loopback)"
    elif not parts.hostname:
        problem = "no host"
    elif parts.username or parts.password:
        problem = "credentials belong in the token, not the URL"
    elif parts.query or parts.fragment:
        problem = "a query or fragment has no meaning here"
    if problem:
        raise GatehouseConfigError(f"invalid daemon URL {url!r}: {problem}")
    try:
        port = parts.port or 80
    except ValueError as err:
        raise GatehouseConfigError(f"invalid daemon URL {url!r}: {err}") from None
    return Endpoint(parts.hostname or "", port, parts.path.rstrip("/"), None, token)


def _token_from_env_or_file(required: bool) -> str:
    env = os.environ.get("GATEHOUSE_TOKEN")
    if env:
        return env
    path = data_dir() / AGENT_TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        if not required:
            return ""
        raise GatehouseConfigError(
            f"cannot read {path} ({err.strerror}); pass token=, set GATEHOUSE_TOKEN or GATEHOUSE_DATA_DIR"
        ) from None
