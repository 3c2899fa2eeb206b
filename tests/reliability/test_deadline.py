"""A marketplace that drips its answer a byte at a time never trips a per-read timeout: each
request and each run has a total deadline, the other marketplace still syncs, and the run ends
with one line naming the marketplace and the deadline."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from .helpers import query


class DripServer:
    """Answers every request with HTTP 200 and a JSON body sent one byte every ``interval`` s."""

    def __init__(self, interval: float = 0.5, headers_too: bool = False):
        self.interval, self.headers_too = interval, headers_too
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/store/v1"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        self.requests += 1
        body = json.dumps({"meta": {"code": 200}, "data": []}).encode() * 50
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode())
        payload = head + body if self.headers_too else body
        try:
            conn.recv(65536)
            if not self.headers_too:
                conn.sendall(head)
            for byte in payload:
                if self.stop.wait(self.interval):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> "DripServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body-drips", "headers-drip"])
def test_a_dripping_marketplace_is_cut_at_the_deadline_and_the_other_still_syncs(creds, run, monkeypatch, tmp_path,
                                                                                  headers_too):
    creds.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])
    with DripServer(headers_too=headers_too) as drip:
        monkeypatch.setenv("BRICKLINK_API_URL", drip.url)
        monkeypatch.setenv("MARKETSYNC_HTTP_TIMEOUT", "2")
        started = time.monotonic()
        result = run("sync", "--http-deadline", "3", "--run-deadline", "16", "--retries", "1")
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: bricklink:"), result.stderr
    assert "within 3s (the request deadline)" in errors[0] or "16s for bricklink" in errors[0], errors[0]
    assert elapsed < 14, elapsed  # one request deadline (3 s), then BrickLink is given up: never the drip's minutes
    synced = query(tmp_path / "marketsync.db", "select provider from sync_state where last_synced_at is not null")
    assert synced == [("brickowl",)]


def test_the_run_deadline_stops_requests_and_says_so(creds, run, monkeypatch, tmp_path):
    with DripServer() as drip:
        monkeypatch.setenv("BRICKLINK_API_URL", drip.url)
        result = run("sync", "--provider", "bricklink", "--http-deadline", "2", "--run-deadline", "3",
                     "--retries", "5", "--retry-backoff", "0")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: bricklink:") and "run's 3s for bricklink" in line, line
    assert drip.requests <= 3


# --- the same, with the sandbox's own "drip" fault instead of the tiny server above --------------
def bricklink_requests(sb) -> int:
    return sum(count for (provider, _), count in sb.calls.items() if provider == "bricklink")


@pytest.mark.parametrize("headers_too", [False, True], ids=["body-drips", "headers-drip"])
def test_the_sandbox_drip_fault_is_cut_at_the_deadline_and_the_other_still_syncs(creds, run, monkeypatch, tmp_path,
                                                                                 headers_too):
    creds.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])
    creds.inject("bricklink", "*", "drip", times=None, interval=0.5, headers_too=headers_too)
    monkeypatch.setenv("MARKETSYNC_HTTP_TIMEOUT", "2")
    started = time.monotonic()
    result = run("sync", "--http-deadline", "3", "--run-deadline", "16", "--retries", "1")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: bricklink:"), result.stderr
    assert "within 3s (the request deadline)" in errors[0] or "16s for bricklink" in errors[0], errors[0]
    assert elapsed < 14, elapsed  # one request deadline (3 s), then BrickLink is given up: never the drip's minutes
    assert bricklink_requests(creds) >= 1 and creds.calls[("brickowl", "GET /order/list")] >= 1
    synced = query(tmp_path / "marketsync.db", "select provider from sync_state where last_synced_at is not null")
    assert synced == [("brickowl",)]


def test_the_run_deadline_stops_requests_to_the_dripping_sandbox_and_says_so(creds, run):
    creds.inject("bricklink", "*", "drip", times=None)  # the default: one byte every 0.5 s
    result = run("sync", "--provider", "bricklink", "--http-deadline", "2", "--run-deadline", "3",
                 "--retries", "5", "--retry-backoff", "0")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: bricklink:") and "run's 3s for bricklink" in line, line
    assert 1 <= bricklink_requests(creds) <= 3

