"""``--as-of``: plain ISO times unchanged, ``now`` and ``floor(TIME, UNIT)`` for schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from features.cli.base import parse_as_of
from features.cli.errors import UsageError


def clock() -> datetime:
    return datetime(2026, 10, 31, 0, 17, 3, 999_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-31T00:00:00Z", datetime(2026, 10, 31, tzinfo=UTC)),
        ("2026-10-31T02:00:00+02:00", datetime(2026, 10, 31, tzinfo=UTC)),
        ("now", datetime(2026, 10, 31, 0, 17, 3, tzinfo=UTC)),
        (" NOW ", datetime(2026, 10, 31, 0, 17, 3, tzinfo=UTC)),
        ("floor(2026-10-31T00:17:03Z, 1d)", datetime(2026, 10, 31, tzinfo=UTC)),
        ("floor(2026-10-30T23:59:59Z,1d)", datetime(2026, 10, 30, tzinfo=UTC)),
        ("floor(2026-10-31T00:00:00Z, 1d)", datetime(2026, 10, 31, tzinfo=UTC)),
        ("FLOOR( 2026-10-31T13:47:12.5Z , 6h )", datetime(2026, 10, 31, 12, tzinfo=UTC)),
        ("floor(2026-10-31T13:47:12Z, 15m)", datetime(2026, 10, 31, 13, 45, tzinfo=UTC)),
        # The zone is applied before flooring: 01:30 at +02:00 is 23:30 UTC the day before.
        ("floor(2026-10-31T01:30:00+02:00, 1d)", datetime(2026, 10, 30, tzinfo=UTC)),
        ("floor(now, 1d)", datetime(2026, 10, 31, tzinfo=UTC)),
        ("floor(now, 1h)", datetime(2026, 10, 31, tzinfo=UTC)),
    ],
)
def test_as_of_forms(text: str, expected: datetime) -> None:
    assert parse_as_of(text, clock=clock) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "--as-of 'yesterday' is not an ISO-8601 time, 'now' or 'floor(TIME, UNIT)'"),
        ("2026-10-31T00:00:00", "has no time zone; add Z for UTC"),
        ("2026-10-31T00:00:00.5Z", "snapshot times have whole seconds"),
        ("floor(2026-10-31T00:17:03Z, 7d)", "floor unit 7d does not divide a day; use e.g. 1h, 6h or 1d"),
        ("floor(2026-10-31T00:17:03Z, 5h)", "floor unit 5h does not divide a day"),
        ("floor(2026-10-31T00:17:03Z, day)", "floor unit 'day' is not a duration; use e.g. 1h or 1d"),
        ("floor(2026-10-31T00:17:03, 1d)", "has no time zone"),
        ("floor(<aws.scheduler.scheduled-time>, 1d)", "is filled in only by EventBridge Scheduler"),
    ],
)
def test_bad_as_of_is_one_line_naming_the_fix(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_as_of(text, clock=clock)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_schedule_argument_once_filled_in_is_the_last_midnight() -> None:
    from features.deploy.schedule import SCHEDULED_TIME, scheduled_as_of

    filled = scheduled_as_of("1d").replace(SCHEDULED_TIME, "2026-10-31T00:17:00Z")
    assert parse_as_of(filled) == datetime(2026, 10, 31, tzinfo=UTC)
