"""xDS tuning: bad values are refused with one line naming the setting."""

from __future__ import annotations

import pytest

from lookaside.cli import main
from lookaside.lb.xds.config import XdsConfig


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--xds-min-gap", "-1", "xDS min gap must be >= 0 seconds"),
        ("--xds-threshold", "1.5", "xDS threshold must be in [0, 1)"),
        ("--xds-smoothing", "-0.1", "xDS smoothing must be >= 0 seconds"),
        ("--xds-rate-smoothing", "-1", "xDS rate smoothing must be >= 0 seconds"),
        ("--xds-queue-gain", "-0.5", "xDS queue gain must be >= 0"),
        ("--xds-adapt-period", "0", "xDS adapt period must be > 0 seconds"),
    ],
)
def test_lb_refuses_bad_xds_tuning_in_one_line(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lb", "--port", "0", flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lookaside lb: error: {message}"


def test_defaults_are_valid_and_documented_values() -> None:
    config = XdsConfig()
    assert (config.min_gap, config.threshold, config.load_reporting) == (0.5, 0.1, True)
    with pytest.raises(ValueError, match="resolution"):
        XdsConfig(resolution=0)
    with pytest.raises(ValueError, match="max weight ratio"):
        XdsConfig(max_ratio=0.5)
