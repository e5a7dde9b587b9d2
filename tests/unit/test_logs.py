"""Log lines: ``key=value`` fields become stable JSON fields; over-long values are cut."""

from __future__ import annotations

import json
import logging

import pytest

from lookaside import logs


def emit(capsys: pytest.CaptureFixture[str], log_format: str, *args: object) -> str:
    logs.configure("INFO", log_format)
    logging.getLogger("lookaside.lb").info(*args)  # type: ignore[arg-type]
    return capsys.readouterr().err


def test_json_lines_have_stable_fields(capsys: pytest.CaptureFixture[str]) -> None:
    line = emit(
        capsys,
        "json",
        "registered id=%s service=%s target=%s:%d capacity=%d",
        "b1",
        "compute",
        "127.0.0.1",
        9000,
        4,
    )
    assert line.count("\n") == 1
    record = json.loads(line)
    assert record["event"] == "registered"
    assert record["backend"] == "b1"
    assert record["service"] == "compute"
    assert record["target"] == "127.0.0.1:9000"
    assert record["capacity"] == "4"
    assert record["level"] == "INFO" and record["logger"] == "lookaside.lb"
    assert record["message"] == "registered id=b1 service=compute target=127.0.0.1:9000 capacity=4"
    assert "time" in record


def test_values_with_spaces_run_to_the_next_field(capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(
        emit(capsys, "json", "evicted id=%s service=%s reason=%s", "b2", "s", "lease expired (5s)")
    )
    assert record["event"] == "evicted"
    assert record["reason"] == "lease expired (5s)"


def test_a_line_without_fields_is_all_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(emit(capsys, "json", "stopping on SIGTERM"))["event"] == "stopping on SIGTERM"


def test_text_format_is_one_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = emit(capsys, "text", "deregistered id=%s service=%s", "b1", "compute")
    assert line.endswith("INFO lookaside.lb deregistered id=b1 service=compute\n")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_over_long_values_are_shortened(
    capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    line = emit(capsys, log_format, "refused id=%s", "x" * 5000)
    assert len(line) < 700
    assert "(5000 characters)" in line


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="--log-format"):
        logs.configure("INFO", "xml")
