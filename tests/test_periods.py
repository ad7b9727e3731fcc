"""Period: every form a period is written in, its months, order and neighbours."""

import datetime as dt

import numpy as np
import pytest

from pipeline.periods import Period


@pytest.mark.parametrize("value, text", [
    ("2026-10", "2026-10"), ("2026/10", "2026-10"), ("2026.1", "2026-01"), ("2026年10月", "2026-10"),
    ("2026年3月份", "2026-03"), ("202610", "2026-10"), (" 2026-10 ", "2026-10"), ("２０２６－１０", "2026-10"),
    ("2026-10-01", "2026-10"), ("2026/10/1 00:00:00", "2026-10"),
    (dt.date(2026, 10, 1), "2026-10"), (dt.datetime(2026, 7, 15, 8, 30), "2026-07"),
    (2026, "2026"), (2026.0, "2026"), (np.int64(202609), "2026-09"), (202612.0, "2026-12"),
    ("2026-Q3", "2026-Q3"), ("2026q3", "2026-Q3"), ("2026 Q1", "2026-Q1"), ("2026年第三季度", "2026-Q3"),
    ("2026年第4季度", "2026-Q4"), ("2026第2季", "2026-Q2"),
    ("2026-H1", "2026-H1"), ("2026h2", "2026-H2"), ("2026年上半年", "2026-H1"), ("2026下半年", "2026-H2"),
    ("2026", "2026"), ("2026年", "2026"), ("2026年度", "2026"),
])
def test_parse_reads_every_form_a_period_is_written_in(value, text):
    period = Period.parse(value)
    assert period is not None and period.text == text and str(period) == text


@pytest.mark.parametrize("value", [
    "2026-13", "2026-00", "202613", "2026-Q5", "2026-H3", "26-10", "Q3", "", "下半年", "2026-10-40 12:00",
    True, False, None, 12, 1899, 3000, 2026.5, 190000, 202600, [2026], float("nan"),
])
def test_parse_refuses_what_is_not_a_period(value):
    assert Period.parse(value) is None


def test_of_raises_on_what_is_not_a_period_and_keeps_a_period():
    q3 = Period.of("2026-Q3")
    assert Period.of(q3) is q3
    with pytest.raises(ValueError, match="2026-13"):
        Period.of("2026-13")


def test_canonical_accepts_only_the_text_the_tool_writes():
    assert Period.canonical("2026-Q3") == Period.of("2026-Q3")
    assert Period.canonical("2026q3") is None
    assert Period.canonical("2026年10月") is None
    assert Period.canonical("2026-Q3-to-2026-08") is None


@pytest.mark.parametrize("text, kind, year, months", [
    ("2026-10", "month", 2026, ("2026-10",)),
    ("2026-Q3", "quarter", 2026, ("2026-07", "2026-08", "2026-09")),
    ("2026-Q1", "quarter", 2026, ("2026-01", "2026-02", "2026-03")),
    ("2026-H1", "half", 2026, ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06")),
    ("2026-H2", "half", 2026, ("2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12")),
    ("2026", "year", 2026, tuple(f"2026-{m:02d}" for m in range(1, 13))),
])
def test_months_kind_length_start_and_end(text, kind, year, months):
    period = Period.of(text)
    assert (period.kind, period.year, period.months) == (kind, year, months)
    assert period.length == len(months)
    assert (period.start, period.end) == (months[0], months[-1])
    assert period.is_month == (kind == "month")


def test_contains_its_months_only():
    q3 = Period.of("2026-Q3")
    assert q3.contains("2026-08")
    assert not q3.contains("2026-10")
    assert not q3.contains("2025-08")
    assert not q3.contains("2026-Q3")


def test_months_to_a_month_of_the_period():
    q3 = Period.of("2026-Q3")
    assert q3.months_to("2026-08") == ("2026-07", "2026-08")
    assert q3.months_to("2026-09") == q3.months
    assert q3.months_to("2026-12") == q3.months


def test_sorted_by_first_month_then_length():
    texts = ["2026", "2026-08", "2026-H2", "2026-Q3", "2026-07", "2025-Q4", "2026-H1", "2026-01"]
    assert [p.text for p in sorted(map(Period.of, texts))] == [
        "2025-Q4", "2026-01", "2026-H1", "2026", "2026-07", "2026-Q3", "2026-H2", "2026-08"]
    assert Period.of("2026-07") < Period.of("2026-Q3") < Period.of("2026-H2")
    assert Period.of("2026-Q3") == Period.parse("2026年第三季度")
    assert Period.of("2026-Q3") != Period.of("2026-07")


@pytest.mark.parametrize("text, before, two_before, last_year", [
    ("2026-01", "2025-12", "2025-11", "2025-01"),
    ("2026-10", "2026-09", "2026-08", "2025-10"),
    ("2026-Q1", "2025-Q4", "2025-Q3", "2025-Q1"),
    ("2026-Q3", "2026-Q2", "2026-Q1", "2025-Q3"),
    ("2026-H1", "2025-H2", "2025-H1", "2025-H1"),
    ("2026", "2025", "2024", "2025"),
])
def test_previous_and_same_period_last_year(text, before, two_before, last_year):
    period = Period.of(text)
    assert period.previous().text == before
    assert period.previous(2).text == two_before
    assert period.last_year().text == last_year
    assert period.shift(1).previous() == period


def test_steps_after_counts_periods_of_one_kind():
    assert Period.of("2026-Q1").steps_after(Period.of("2025-Q3")) == 2
    assert Period.of("2026-02").steps_after(Period.of("2025-02")) == 12
    assert Period.of("2026-10").steps_after(Period.of("2026-10")) == 0


def test_enclosing_period_of_a_month():
    assert Period.of("2026-08").enclosing("quarter").text == "2026-Q3"
    assert Period.of("2026-12").enclosing("quarter").text == "2026-Q4"
    assert Period.of("2026-06").enclosing("half").text == "2026-H1"
    assert Period.of("2026-07").enclosing("year").text == "2026"
    assert Period.of("2026-07").enclosing("month").text == "2026-07"


def test_str_and_f_strings_give_the_canonical_text():
    period = Period.parse("2026年第三季度")
    assert f"{period}-to-2026-08" == "2026-Q3-to-2026-08"
