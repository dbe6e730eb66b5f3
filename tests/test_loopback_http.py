"""The CLI's own HTTP/1.1 connection (client/loopback_http.py) against canned answers."""

import socket
import threading

import pytest

from renderlocal.client.loopback_http import BadResponse, Connection


def serve(answers: list[bytes]):
    """A one-connection server that reads a request, then sends the next answer; returns (port, requests)."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def run():
        conn, _ = listener.accept()
        with conn:
            for answer in answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(answer)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], requests


def test_requests_share_one_kept_alive_connection_and_bodies_are_read_by_length_or_chunks():
    port, requests = serve([
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"id\": \"j\"}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1, \r\n2\r\n2]\r\n0\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ])
    connection = Connection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/v1/x", {"Authorization": "Bearer t"}, '{"a": "\u00e9"}')
    assert connection.response() == (201, b'{"id": "j"}')
    connection.request("GET", "/v1/y?limit=1", {})
    assert connection.response() == (200, b"[1, 2]")
    connection.request("POST", "/v1/z", {})
    assert connection.response() == (202, b"")
    first = requests[0]
    assert first.startswith(b"POST /v1/x HTTP/1.1\r\n") and f"Host: 127.0.0.1:{port}".encode() in first
    assert b"Authorization: Bearer t" in first and first.endswith('{"a": "\u00e9"}'.encode())
    assert b"Content-Length: 11" in first  # bytes (é is two), not characters


@pytest.mark.parametrize("answer", [b"", b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"])
def test_a_closed_connection_or_an_answer_that_is_not_http_is_an_os_error(answer):
    port, _ = serve([answer])
    connection = Connection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/", {})
    with pytest.raises(BadResponse):
        connection.response()
    assert issubclass(BadResponse, OSError)  # the client retries or says the control plane stopped answering
