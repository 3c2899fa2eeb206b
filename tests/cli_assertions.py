"""Assertions shared by the CLI test modules."""

HEADER = "part_number,color_id,condition,location,quantity"


def one_line_error(result, code: int = 1) -> str:
    """The command failed with ``code`` and said so in exactly one line, without a traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]
