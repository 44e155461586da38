"""Who may talk to the viewer's websocket, and how much one may upload.

A browser lets any web page open ``ws://127.0.0.1:PORT``; only the page the viewer itself served may drive it.
viser 1.1.1 has no origin option (its ``websockets.serve`` call passes no ``origins=`` and its
``process_request`` hook is its own file server), and it buffers an upload of any declared size. So the guard
attaches to viser's websocket server through its hooks: an ``on_client_connect`` callback, which runs before
any message of that connection is sent or dispatched, closes a connection whose ``Origin`` is foreign (policy
violation, 1008); upload messages pass through a gate in front of viser's own handlers that forwards only
transfers within the cap. Two viser internals are read, both checked when the guard is installed so a viser
that changed them fails to start rather than running unguarded: the handshake request of a connection
(``WebsockServer._live_connections``) and the handler table (``_incoming_handlers``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import viser
import viser.infra
from viser import _messages

log = logging.getLogger("splatpack.view")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str) -> set[str]:
    """Host names a page served by a viewer bound to ``host`` can have: loopback always, the bound address,
    and for a wildcard bind the machine's own names (IP literals of any interface are accepted separately)."""
    names = {*LOOPBACK_NAMES, host.lower()}
    if host in WILDCARD_HOSTS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return names - {""}


def origin_allowed(origin: str | None, host: str, port: int, extra: tuple[str, ...] = ()) -> bool:
    """Whether a websocket handshake's ``Origin`` is the viewer's own page (or one of ``extra`` origins).

    A name-based origin must be one of ``allowed_hosts``: a DNS-rebinding page (evil.example resolved to
    127.0.0.1) keeps its own name in ``Origin``. No ``Origin`` at all means no browser: refused as well.
    """
    if origin is None:
        return False
    if origin in extra:
        return True
    parts = urlsplit(origin)
    try:
        origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    name = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or origin_port != port:
        return False
    if name in allowed_hosts(host):
        return True
    if host in WILDCARD_HOSTS:
        try:
            ipaddress.ip_address(name)  # a literal address of this machine (rebinding needs a name)
            return True
        except ValueError:
            return False
    return False


@dataclasses.dataclass
class _Transfer:
    client_id: int
    declared: int
    part_count: int
    received: int = 0
    overrun: bool = False
    parts: set = dataclasses.field(default_factory=set)


class Guard:
    """Origin check and upload cap for one ``viser.ViserServer``; install it before anyone can connect to use."""

    def __init__(
        self,
        server: viser.ViserServer,
        *,
        max_upload_bytes: int,
        on_refused_upload: Callable[[int, str], None],
        extra_origins: tuple[str, ...] = (),
    ):
        ws = getattr(server, "_websock_server", None)
        if not isinstance(ws, viser.infra.WebsockServer) or not all(
            isinstance(getattr(ws, name, None), dict) for name in ("_live_connections", "_incoming_handlers")
        ):
            raise RuntimeError(f"viser {viser.__version__}: cannot install the viewer's origin check; not serving")
        self.ws = ws
        self.host, self.port = server.get_host(), server.get_port()
        self.extra_origins = extra_origins
        self.max_upload_bytes = max_upload_bytes
        self.on_refused_upload = on_refused_upload
        self.refused_origins: list[str | None] = []
        self._lock = threading.Lock()
        # Transfers viser may be buffering, each holding its declared size of the client's cap until it completes
        # or the client goes (an overrun transfer keeps it: viser keeps its parts until then).
        self._transfers: dict[str, _Transfer] = {}
        ws.on_client_connect(self._check_origin)
        ws.on_client_disconnect(self._forget_client)
        self._gate(_messages.FileTransferStartUpload, self._start_allowed)
        self._gate(_messages.FileTransferPart, self._part_allowed)
        # The server started serving inside ViserServer(): check whoever connected before the hook was in place.
        for client_id in list(ws._live_connections):
            conn = viser.infra.WebsockClientConnection(client_id, None)
            asyncio.run_coroutine_threadsafe(self._check_origin(conn), server.get_event_loop()).result(timeout=10)

    # ------------------------------------------------------------------ origin

    async def _check_origin(self, conn: viser.infra.WebsockClientConnection) -> None:
        connection = self.ws._live_connections.get(conn.client_id)
        request = getattr(connection, "request", None)
        origin = request.headers.get("Origin") if request is not None else None
        if connection is None or not origin_allowed(origin, self.host, self.port, self.extra_origins):
            self.refused_origins.append(origin)
            log.warning("refused a websocket connection from origin %r (not the viewer's own page)", origin)
            if connection is not None:
                await connection.close(1008, "origin not allowed")

    # ------------------------------------------------------------------ uploads

    def _gate(self, message_cls, allowed) -> None:
        """Put ``allowed(client_id, message)`` in front of viser's own handlers for ``message_cls``."""
        originals = list(self.ws._incoming_handlers.get(message_cls, []))
        if not originals:
            raise RuntimeError(f"viser {viser.__version__}: no handler for {message_cls.__name__}; not serving")
        self.ws.unregister_handler(message_cls)

        async def gated(client_id, message) -> None:
            if not allowed(client_id, message):
                return
            for handler in originals:
                result = handler(client_id, message)
                if result is not None:
                    await result

        self.ws.register_handler(message_cls, gated)

    def _in_flight(self, client_id: int) -> int:
        return sum(t.declared for t in self._transfers.values() if t.client_id == client_id)

    def _start_allowed(self, client_id: int, message) -> bool:
        with self._lock:
            total = self._in_flight(client_id) + max(0, message.size_bytes)
            if message.size_bytes < 0 or total > self.max_upload_bytes:
                problem = (
                    f"{message.filename}: upload of {message.size_bytes} bytes refused (the viewer's cap is "
                    f"{self.max_upload_bytes} bytes; start it with a larger --max-upload-mb to open bigger files)"
                )
                refused = True
            else:
                if message.part_count > 0:  # viser completes an empty upload at once
                    self._transfers[message.transfer_uuid] = _Transfer(
                        client_id, message.size_bytes, message.part_count
                    )
                refused = False
        if refused:
            log.warning("%s", problem)
            self.on_refused_upload(client_id, problem)
        return not refused

    def _part_allowed(self, client_id: int, message) -> bool:
        with self._lock:
            t = self._transfers.get(message.transfer_uuid)
            if t is None or t.client_id != client_id or t.overrun or message.part_index in t.parts:
                return False
            # Parts may never add up to more than the declared size: viser buffers at most what was allowed.
            if t.received + len(message.content) > t.declared:
                t.overrun = True
                return False
            t.received += len(message.content)
            t.parts.add(message.part_index)
            if len(t.parts) >= t.part_count:
                del self._transfers[message.transfer_uuid]
            return True

    def _forget_client(self, conn: viser.infra.WebsockClientConnection) -> None:
        with self._lock:
            for uuid in [u for u, t in self._transfers.items() if t.client_id == conn.client_id]:
                del self._transfers[uuid]
