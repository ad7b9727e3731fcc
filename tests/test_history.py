"""The results history (OUT/history.sqlite): runs, results and totals of every run, trends on the
scorecards, streaks, and the `kpi history` / `kpi runs` commands."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from builders import write_inbox
from click.testing import CliRunner

from pipeline import history
from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.policy import load_policy, parse_policy

MONTHS = ("2026-07", "2026-08", "2026-09")
PEOPLE = [  # employee_id, name, department, role family
    ("E1", "王芳", "销售部", "销售"), ("E2", "李强", "销售部", "销售"), ("E3", "赵敏", "销售部", "销售"),
    ("E4", "陈刚", "研发部", "研发"), ("E5", "周杰", "研发部", "研发"),
]
# Each employee's level per month: all three actuals equal it, targets are 100, so the total is
# level / 100 (S from 110, A from 100, B from 90, C from 80, D below).
LEVELS = {
    "2026-07": {"E1": 115, "E2": 95, "E3": 100, "E4": 85, "E5": 95},
    "2026-08": {"E1": 105, "E2": 92, "E3": 101, "E4": 95, "E5": 85},
    "2026-09": {"E1": 112, "E2": 90, "E3": 99, "E4": 82, "E5": 70},
}


def company_inbox(folder: Path, period: str, levels: dict[str, float]) -> Path:
    """One month's inbox: roster, indicators, the month's agreements and actuals."""
    roster = [{"employee_id": e, "name": n, "department": d, "role_family": f} for e, n, d, f in PEOPLE]
    indicators = [{"indicator_id": i, "name": name, "dimension": "业绩", "direction": "越高越好", "method": "比率",
                   "unit": "万元", "aggregation": "求和"} for i, name in (("K1", "销售额"), ("K2", "回款额"), ("K3", "毛利"))]
    role_kpis = [{"role_family": f, "period": period, "indicator_id": i, "weight": w, "target": 100}
                 for f in ("销售", "研发") for i, w in (("K1", 50), ("K2", 30), ("K3", 20))]
    actuals = [{"employee_id": e, "period": period, "indicator_id": i, "actual": level}
               for e, level in levels.items() for i in ("K1", "K2", "K3")]
    return write_inbox(folder, roster=roster, indicators=indicators, role_kpis=role_kpis, actuals=actuals)


def run_month(tmp_path: Path, out: Path, period: str, levels: dict | None = None, policy=None, **kw):
    inbox = company_inbox(tmp_path / f"inbox-{period}", period, levels or LEVELS[period])
    return run_batch(inbox, period, out, policy or load_policy(), jobs=1, **kw)


def query(out: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(out / "history.sqlite") as con:
        return con.execute(sql, args).fetchall()
