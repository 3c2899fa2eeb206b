"""`marketsync sandbox` takes commands on standard input while it serves (issue 15, item 8).

The real command runs as a subprocess with piped stdin; its stdout is read line by line with a
bounded wait (never a sleep). A newcomer's session is replayed: place orders, sync with the
printed .env values, cancel one (its stock is released), ship one (its stock is consumed).
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from marketsync.sandbox import write_demo_inventory_csv
from marketsync.sandbox.colors import colors
from marketsync.sandbox.demo import IDS_ONLY_PARTS, boid_base, demo_lots

TIMEOUT = 30  # seconds any one expected line may take (a loaded CI machine, the demo store's setup)


class SandboxProcess:
    """``python -m marketsync sandbox ...`` with piped stdin; stdout and stderr read by threads."""

    def __init__(self, *args: str, cwd: Path, stdout=subprocess.PIPE, stdin=subprocess.PIPE):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "marketsync", "sandbox", "--bricklink-port", "0", "--brickowl-port", "0", *args],
            stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=cwd, bufsize=1,
        )  # fmt: skip
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            if stream is not None:
                threading.Thread(target=self._pump, args=(stream, into), daemon=True).start()
        self.env: dict[str, str] = {}

    @staticmethod
    def _pump(stream, into: queue.Queue) -> None:
        for line in stream:
            into.put(line.rstrip("\n"))
        into.put(None)  # end of the stream

    def next_line(self, source: queue.Queue | None = None, timeout: float = TIMEOUT) -> str:
        """The next line the process writes (fails after ``timeout`` seconds or at its end)."""
        try:
            line = (source or self.out).get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line within {timeout}s; stderr so far: {self.drain_stderr()}")
        if line is None:
            pytest.fail(f"the sandbox closed its output (exit {self.proc.poll()}); stderr: {self.drain_stderr()}")
        if source is self.err:
            self.stderr_lines.append(line)
        return line

    def drain_stderr(self) -> list[str]:
        while True:
            try:
                line = self.err.get_nowait()
            except queue.Empty:
                return self.stderr_lines
            if line is not None:
                self.stderr_lines.append(line)

    def read_env(self, source: queue.Queue | None = None) -> dict[str, str]:
        while "BRICKOWL_API_URL" not in self.env:
            name, sep, value = self.next_line(source).partition("=")
            assert sep and name.isupper(), f"not an .env line: {name}{sep}{value}"
            self.env[name] = value
        return self.env

    def ask(self, command: str, pattern: str, source: queue.Queue | None = None) -> re.Match:
        """Send one command; its answer is the very next line and matches ``pattern``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.next_line(source)
        match = re.fullmatch(pattern, answer)
        assert match, f"{command!r} answered {answer!r}, expected /{pattern}/"
        return match

    def listing(self, command: str, noun: str) -> list[str]:
        """A command answering one line per item, then the count line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while not re.fullmatch(rf"\d+ {noun}s?", line := self.next_line()):
            lines.append(line)
        assert line == f"{len(lines)} {noun}{'' if len(lines) == 1 else 's'}"
        return lines

    def interrupt(self) -> int:
        """Ctrl-C: the servers stop and the command exits quietly."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=TIMEOUT)
        stderr = "\n".join(self.drain_stderr())
        assert "Traceback" not in stderr, stderr
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


@pytest.fixture
def start(tmp_path):
    started: list[SandboxProcess] = []

    def _start(*args: str, **kwargs) -> SandboxProcess:
        sandbox = SandboxProcess(*args, cwd=tmp_path, **kwargs)
        started.append(sandbox)
        return sandbox

    yield _start
    for sandbox in started:
        sandbox.close()


def sync(run, env: dict[str, str], provider: str):
    result = run("sync", "--provider", provider, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def stock(run, location: str) -> tuple[int, int]:
    """(on hand, reserved) of the lot in ``location``, as `marketsync inventory list` shows it."""
    import json

    result = run("inventory", "list", "--location", location, "--json")
    assert result.exit_code == 0, result.stderr
    [lot] = json.loads(result.stdout)
    return lot["quantity"], lot["quantity_reserved"]


def test_a_cancel_releases_stock_and_a_shipment_consumes_it_on_bricklink(start, run, tmp_path):
    sandbox = start("--empty")
    env = sandbox.read_env()
    (tmp_path / "inventory.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A01,10\n")
    assert run("inventory", "import", "inventory.csv").exit_code == 0

    first = sandbox.ask("order bricklink 3001 11 2 A01",
                        r"bricklink order (\d+) placed \(PAID\): 2 x 3001/11 \(Black\) @A01, "
                        r"no such lot in the store: no stock taken").group(1)  # fmt: skip
    assert sync(run, env, "bricklink").exit_code == 0
    assert stock(run, "A01") == (10, 2)

    sandbox.ask(f"status bricklink {first} CANCELLED", rf"bricklink {first}: PAID -> CANCELLED \(lots unchanged\)")
    sync(run, env, "bricklink")
    assert stock(run, "A01") == (10, 0)  # the cancel released the reservation

    second = sandbox.ask("order bricklink 3001 11 3 A01", r"bricklink order (\d+) placed .*").group(1)
    sync(run, env, "bricklink")
    assert stock(run, "A01") == (10, 3)
    sandbox.ask(f"status bricklink {second} SHIPPED",
                rf"bricklink {second}: PAID -> SHIPPED \(lots unchanged: the pieces left with the parcel\)")
    sync(run, env, "bricklink")
    assert stock(run, "A01") == (7, 0)  # the shipment consumed it

    assert sandbox.listing("orders bricklink", "order") == [
        f"bricklink {first} CANCELLED 1 line: 2 x 3001/11 @A01",
        f"bricklink {second} SHIPPED 1 line: 3 x 3001/11 @A01",
    ]
    third = sandbox.ask("order bricklink 3001 11 1 A01", r"bricklink order (\d+) placed .*").group(1)
    sync(run, env, "bricklink")
    sandbox.ask(f"delete bricklink {third}", rf"bricklink {third} deleted: no longer listed, .*")
    result = sync(run, env, "bricklink")
    assert f"order {third} is open here but BrickLink no longer has it" in result.stderr
    assert stock(run, "A01") == (7, 1)  # a vanished order keeps its stock until the seller releases it
    assert sandbox.interrupt() == 0


def test_a_cancel_releases_stock_and_a_shipment_consumes_it_on_brickowl_in_the_demo_store(start, run, tmp_path):
    sandbox = start()  # the demo store, as `marketsync sandbox` starts by default
    env = sandbox.read_env()
    assert run("inventory", "import", write_demo_inventory_csv(tmp_path / "inventory.csv")).exit_code == 0
    sync(run, env, "brickowl")  # the demo's own orders first (some lines are unmatched on purpose)

    lot = next(x for x in demo_lots(1) if x.condition == "new" and x.part_number not in IDS_ONLY_PARTS
               and colors().bl_to_bo(x.color_id))  # fmt: skip
    boid = f"{boid_base(lot.part_number)}-{colors().bl_to_bo(lot.color_id)}"
    listed = sandbox.listing(f"lots brickowl {boid}", "lot")
    assert any(line.endswith(f" @{lot.location}") for line in listed), listed
    on_hand, held = stock(run, lot.location)

    first = sandbox.ask(f"order brickowl {boid} 2 {lot.location}",
                        rf"brickowl order (\d+) placed \(Payment Received\): 2 x {boid} @{lot.location}, "
                        r"taken from lot \d+, \d+ left on it").group(1)  # fmt: skip
    sync(run, env, "brickowl")
    assert stock(run, lot.location) == (on_hand, held + 2)

    sandbox.ask(f"status brickowl {first} Cancelled",
                rf"brickowl {first}: Payment Received -> Cancelled \(lots unchanged: this BrickOwl store does "
                r"not restock a cancelled order\)")  # fmt: skip
    sync(run, env, "brickowl")
    assert stock(run, lot.location) == (on_hand, held)  # released

    second = sandbox.ask(f"order brickowl {boid} 3 {lot.location}", r"brickowl order (\d+) placed .*").group(1)
    sync(run, env, "brickowl")
    assert stock(run, lot.location) == (on_hand, held + 3)
    sandbox.ask(f"status brickowl {second} Shipped", rf"brickowl {second}: Payment Received -> Shipped \(.*\)")
    sync(run, env, "brickowl")
    assert stock(run, lot.location) == (on_hand - 3, held)  # consumed
    orders = sandbox.listing("orders brickowl", "order")
    assert f"brickowl {second} Shipped 1 line: 3 x {boid} @{lot.location}" in orders and len(orders) > 25
    assert sandbox.interrupt() == 0


def test_every_command_answers_one_line_and_the_end_of_input_keeps_the_marketplaces(start):
    sandbox = start("--empty")
    env = sandbox.read_env()
    sandbox.ask("help", r"commands: orders \[PROVIDER\] \| .*order bricklink PART COLOUR QTY \[BIN\].*\| help")
    sandbox.ask("bogus", r"error: unknown command 'bogus'; try 'help'")
    sandbox.ask("status bricklink 1 SHIPPED", r"error: no order 1 in the BrickLink store; see 'orders bricklink'")
    sandbox.ask("status brickowl 1", r"error: usage: status PROVIDER ORDER_ID STATUS .*")
    sandbox.ask("order ebay 3001 11 1", r"error: unknown marketplace 'ebay'; expected bricklink or brickowl")
    sandbox.ask("order bricklink 3001 black 1", r"error: COLOUR must be a whole number of at least 0, not 'black'")
    sandbox.ask("order bricklink 3001 11 0", r"error: QTY must be a whole number of at least 1, not '0'")
    sandbox.ask('order bricklink "3001', r"error: No closing quotation")
    oid = sandbox.ask("order brickowl 487300 38 2 B02", r"brickowl order (\d+) placed .*: 2 x 487300-38 @B02, .*").group(1)
    sandbox.ask(f"status brickowl {oid} Teleported", r"error: 'Teleported' is not a BrickOwl status; one of .*")
    sandbox.ask(f"status brickowl {oid} payment   received", rf"brickowl {oid}: Payment Received -> Payment Received .*")
    sandbox.ask("delete brickowl 1", r"error: no order 1 in the BrickOwl store; see 'orders brickowl'")
    assert sandbox.listing("lots bricklink", "lot") == []
    sandbox.ask("# a comment, then a blank line, answer nothing\n\nhelp", r"commands: .*")

    assert sandbox.proc.stdin is not None
    sandbox.proc.stdin.close()  # EOF: the commands end, the marketplaces do not
    listed = requests.get(env["BRICKOWL_API_URL"] + "/order/list", params={"key": env["BRICKOWL_API_KEY"]}, timeout=5)
    assert [o["order_id"] for o in listed.json()] == [oid]
    assert sandbox.proc.poll() is None
    assert sandbox.interrupt() == 0
    assert "Traceback" not in "\n".join(sandbox.stderr_lines)


def test_with_the_env_lines_going_to_a_file_the_answers_go_to_stderr(start, tmp_path):
    env_file = tmp_path / "sandbox.env"
    with env_file.open("w") as out:
        sandbox = start("--empty", stdout=out)
    assert sandbox.next_line(sandbox.err).startswith("# sandbox running; type 'help' for commands")
    sandbox.ask("help", r"commands: .*", source=sandbox.err)
    names = [line.partition("=")[0] for line in env_file.read_text().splitlines()]
    assert names[-1] == "BRICKOWL_API_URL" and all(name.isupper() for name in names)  # only the .env lines
    assert sandbox.interrupt() == 0


def test_a_null_stdin_reads_no_commands_and_serves(start):
    """Started with /dev/null for input (a background job in a script, cron), the sandbox just serves."""
    sandbox = start("--empty", stdin=subprocess.DEVNULL)
    env = sandbox.read_env()
    assert sandbox.next_line(sandbox.err) == "# sandbox running; Ctrl-C to stop"
    listed = requests.get(env["BRICKOWL_API_URL"] + "/order/list", params={"key": env["BRICKOWL_API_KEY"]}, timeout=5)
    assert listed.json() == [] and sandbox.proc.poll() is None
    assert sandbox.interrupt() == 0
