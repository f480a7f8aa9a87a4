"""Date, phone and value parsing, with property tests for dates and phones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_integrations.parsing import (
    epoch_ms,
    normalize_gender,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_id_list,
    parse_local_date,
    parse_phone,
    split_full_name,
    time_zone,
)

# hypothesis draws naive datetimes between naive bounds; each is made UTC below.
MOMENTS = st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2200, 1, 1)).map(  # noqa: DTZ001
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
)
OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-09-18T11:11:36.000-07:00", datetime(2019, 9, 18, 18, 11, 36, tzinfo=UTC)),
        ("2023-06-15T22:57:35.836575Z", datetime(2023, 6, 15, 22, 57, 35, 836575, tzinfo=UTC)),
        ("2027-01-31 00:00:00.000", datetime(2027, 1, 31, tzinfo=UTC)),
        ("11/24/2026 09:30:00", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("1952-07-23T12:00:00.000", datetime(1952, 7, 23, 12, tzinfo=UTC)),
        ("2019-01-01T00:00:00z", datetime(2019, 1, 1, tzinfo=UTC)),
        ("2000-01-01", datetime(2000, 1, 1, tzinfo=UTC)),
        (1761793355437, datetime(2025, 10, 30, 3, 2, 35, 437000, tzinfo=UTC)),
        ("1761793355437", datetime(2025, 10, 30, 3, 2, 35, 437000, tzinfo=UTC)),
        (-86400000, datetime(1969, 12, 31, tzinfo=UTC)),
        ("1900-01-01T00:00:00", None),
        ("01/01/1900 00:00:00", None),
        ("0001-01-01T00:00:00", None),
        ("", None),
        (None, None),
    ],
)
def test_datetime_formats(text: object, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["not-a-date", "2020-13-01", "31/31/2020", "yesterday"])
def test_unreadable_datetimes_raise(text: str) -> None:
    with pytest.raises(ValueError, match="unrecognised date/time format"):
        parse_datetime(text)


def test_dates_keep_their_calendar_day() -> None:
    assert parse_date("2030-01-01T00:00:00.000-07:00") == date(2030, 1, 1)  # no shift to UTC
    assert parse_date("1990-01-01") == date(1990, 1, 1)
    assert parse_date("02/03/1990") == date(1990, 2, 3)
    assert parse_date(631152000000) == date(1990, 1, 1)
    assert parse_date("1900-01-01") is None
    with pytest.raises(ValueError, match="unrecognised date/time format"):
        parse_date("2020-01-01Tgarbage")


@given(MOMENTS, OFFSETS)
def test_iso_with_any_offset_round_trips(moment: datetime, offset: timezone) -> None:
    local = moment.astimezone(offset)
    assert parse_datetime(local.isoformat(timespec="milliseconds")) == moment
    assert parse_datetime(local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + local.strftime("%z")) == moment


@given(MOMENTS)
def test_every_format_of_the_same_moment_agrees(moment: datetime) -> None:
    seconds = moment.replace(microsecond=0)
    assert parse_datetime(epoch_ms(moment)) == moment
    assert parse_datetime(str(epoch_ms(moment))) == moment
    assert parse_datetime(seconds.strftime("%m/%d/%Y %H:%M:%S")) == seconds
    assert parse_datetime(moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]) == moment
    assert parse_datetime(moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == moment
    assert parse_date(moment.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")) == moment.date()


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2100, 12, 31)))
def test_dates_in_every_format(day: date) -> None:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert parse_date(day.isoformat()) == day
    assert parse_date(day.strftime("%m/%d/%Y")) == day
    assert parse_date(epoch_ms(midnight)) == day
    assert parse_date(f"{day.isoformat()} 00:00:00.000") == day


@pytest.mark.parametrize("value", ["300000000000000", 300000000000000, -(10**16), "1e400"])
def test_epoch_milliseconds_out_of_range_are_a_value_error(value) -> None:
    with pytest.raises(ValueError, match=r"epoch milliseconds out of range|unrecognised date/time format"):
        parse_datetime(value)


@given(st.text(max_size=40))
def test_parsing_junk_never_crashes_unexpectedly(text: str) -> None:
    try:
        result = parse_datetime(text)
    except ValueError:
        return
    assert result is None or result.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("(555) 010-0001", "5550100001"),
        ("+1 555.010.0001", "5550100001"),
        ("15550100001", "5550100001"),
        ("(306) 222-3333", "3062223333"),
        (5550100001, "5550100001"),
        ("", ""),
        (None, ""),
    ],
)
def test_phone_examples(raw: object, digits: str) -> None:
    assert parse_phone(raw) == digits


@given(
    st.from_regex(r"[2-9][0-9]{9}", fullmatch=True),
    st.sampled_from(["{a}{b}{c}", "({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}", " {a}/{b}{c} "]),
)
def test_phone_formatting_is_ignored(number: str, style: str) -> None:
    text = style.format(a=number[:3], b=number[3:6], c=number[6:])
    assert parse_phone(text) == number


@given(st.text(max_size=30))
def test_phone_is_always_digits_and_idempotent(text: str) -> None:
    digits = parse_phone(text)
    assert digits == "" or (digits.isascii() and digits.isdigit())
    assert parse_phone(digits) == digits


def test_other_values() -> None:
    assert parse_decimal(10.98) == Decimal("10.98")
    assert parse_decimal(None) == Decimal(0)
    with pytest.raises(ValueError, match="expected a number"):
        parse_decimal("lots")
    assert parse_bool("false") is False
    assert parse_bool(None) is True
    assert [normalize_gender(g) for g in ("Male", "FEMALE", "U", "Unspecified", "other", None)] == [
        "M",
        "F",
        "",
        "",
        "X",
        "",
    ]
    assert split_full_name("  Mary  Ann   Smith ") == ("Mary Ann", "Smith")
    assert split_full_name("") == ("", "")


@pytest.mark.parametrize(
    ("value", "zone", "day"),
    [
        (631180800000, "America/Los_Angeles", date(1990, 1, 1)),  # 08:00 UTC: PST midnight
        (646815600000, "America/Los_Angeles", date(1990, 7, 1)),  # 07:00 UTC: PDT midnight
        ("631180800000", "America/Los_Angeles", date(1990, 1, 1)),
        (631180800000, "UTC", date(1990, 1, 1)),
        (631152000000, "America/Los_Angeles", date(1989, 12, 31)),  # UTC midnight is the evening before
        ("1990-01-01", "Asia/Tokyo", date(1990, 1, 1)),  # a written date is never shifted
        (None, "UTC", None),
    ],
)
def test_local_dates_from_epoch_milliseconds(value: object, zone: str, day: date | None) -> None:
    assert parse_local_date(value, time_zone(zone)) == day


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "../etc/passwd", "America/"])
def test_unknown_time_zones_are_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        time_zone(name)


def test_id_lists() -> None:
    assert parse_id_list([19, "20", None, " "]) == ("19", "20")
    assert parse_id_list(None) == ()
    assert parse_id_list([]) == ()
    with pytest.raises(ValueError, match="expected a list of ids"):
        parse_id_list("19")
