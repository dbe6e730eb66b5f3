"""Is a data store ready? The check ``pg_isready`` and ``redis-cli ping`` make, spoken over the
store's localhost port from the control plane: a probe costs a loopback connection, not an
``exec`` in the container (about 90 ms of the engine's time, and CPU the starting server needs).
"""

from __future__ import annotations

import socket
import struct

PROBE_TIMEOUT_SECONDS = 1.0
POSTGRES_PROTOCOL_3 = 196608
POSTGRES_NOT_YET = "57P03"  # cannot_connect_now: starting up, shutting down, in recovery


def postgres_ready(port: int, user: str, database: str, host: str = "127.0.0.1") -> bool:
    """Whether PostgreSQL accepts connections, as ``pg_isready`` decides it (PQping): a startup
    packet answered by an authentication request, or by any error but "not yet", means ready."""
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    packet = struct.pack("!ii", 8 + len(params), POSTGRES_PROTOCOL_3) + params
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS) as sock:
            sock.sendall(packet)
            kind = sock.recv(1)
            if kind == b"R":  # an authentication request: it is taking connections
                return True
            if kind != b"E":  # closed (the engine's port proxy, nothing listening behind it yet)
                return False
            return POSTGRES_NOT_YET not in _error_codes(sock)
    except OSError:
        return False


def _error_codes(sock: socket.socket) -> list[str]:
    """The SQLSTATE of an ErrorResponse whose type byte was read."""
    header = _read(sock, 4)
    if len(header) < 4:
        return [POSTGRES_NOT_YET]
    body = _read(sock, struct.unpack("!i", header)[0] - 4)
    fields = [field for field in body.split(b"\0") if field]
    return [field[1:].decode("ascii", "replace") for field in fields if field[:1] == b"C"]


def key_value_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Whether Redis answers PING with PONG (not ``-LOADING`` while it reads its data back)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
