"""Compact durations: parsing every accepted form, rejecting the rest, printing them back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentrace.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        (" 2H ", 7200.0),
        ("90", 90.0),
        ("0s", 0.0),
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
        (timedelta(hours=1), 3600.0),
        (timedelta(milliseconds=250), 0.25),
    ],
)
def test_parse_accepts_every_form(value: object, seconds: float) -> None:
    assert parse_duration(value, "window") == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["-5m", "abc", "1x", "", "h", "1h-30m", "1.h", None, True, -1, float("nan"), float("inf"), timedelta(seconds=-1)],
)
def test_parse_rejects_bad_input_naming_the_field_and_the_forms(value: object) -> None:
    with pytest.raises(ValueError, match=r"^AlertRule\.window must be .*'90s', '15m', '1h30m', '7d'"):
        parse_duration(value, "AlertRule.window")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3600, "1h"),
        (5400, "1h30m"),
        (90, "1m30s"),
        (0, "0s"),
        (0.5, "500ms"),
        (604800, "7d"),
        (86401, "1d1s"),
        (3661.25, "1h1m1s250ms"),
    ],
)
def test_format_is_compact_largest_unit_first(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_format_rejects_negative_and_non_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds >= 0"):
        format_duration(seconds)


@given(st.integers(min_value=0, max_value=400 * 86400 * 1000))
def test_format_then_parse_round_trips_to_the_millisecond(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000, abs=1e-9)
