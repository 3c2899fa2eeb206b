"""Helpers shared by the test modules (tests/ is on sys.path, so: ``from support import ...``)."""

import datetime as dt
import subprocess
import time

import pytest

HEADER = "part_number,color_id,condition,location,quantity"


def one_line_error(result, code: int = 1) -> str:
    """The command failed with ``code`` and said so in exactly one line, without a traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]



def is_utc(moment) -> bool:
    return isinstance(moment, dt.datetime) and moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)


def wait_for(condition, timeout: float = 20.0, what: str = "condition", proc: subprocess.Popen | None = None):
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = condition()
            if value:
                return value
            out, err = proc.communicate()
            pytest.fail(f"process exited ({proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def reading_recorded(monkeypatch, module) -> tuple[list[int], list[int]]:
    """(the pieces of the body handed to the decoder so far, at each summary made; all pieces handed out)."""
    pieces: list[int] = []
    at_summary: list[int] = []
    from marketsync import parse

    chunks_of, summary = parse.chunks_of, module.summary

    def counted(body, size=1 << 20):
        for piece in chunks_of(body, size):
            pieces.append(len(piece))
            yield piece

    def recorded(*args, **kwargs):
        at_summary.append(len(pieces))
        return summary(*args, **kwargs)

    monkeypatch.setattr(parse, "chunks_of", counted)
    monkeypatch.setattr(module, "summary", recorded)
    return at_summary, pieces
