"""Everything fits: realistic magnitudes (up to 10^10) and long names never print as ### or cut.

Column widths are checked on the file; where LibreOffice is installed, the workbooks are also
printed to PDF and the text searched for ###.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from builders import write_inbox

from pipeline.batch import run_batch
from pipeline.policy import load_policy

LONG_NAME = "华东区域重点战略客户年度合同回款及续约金额(含税,按合同口径)"
PEOPLE = [{"employee_id": f"E{i}", "name": f"员工{i}", "department": "销售部", "position": "销售",
           "role_family": "销售"} for i in range(1, 4)]
INDICATORS = [
    {"indicator_id": "K1", "name": LONG_NAME, "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "元"},
    {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩", "direction": "越高越好", "method": "阶梯",
     "unit": "个"},
]
ROLE = [{"role_family": "销售", "period": "2026-10", "indicator_id": "K1", "weight": "70%", "target": 12_000_000_000},
        {"role_family": "销售", "period": "2026-10", "indicator_id": "K2", "weight": "30%", "base": 8_000_000,
         "target": 10_000_000, "stretch": 12_000_000}]


def big_inbox(folder: Path) -> Path:
    actuals = [{"employee_id": e["employee_id"], "period": "2026-10", "indicator_id": k, "actual": v}
               for e, (a1, a2) in zip(PEOPLE, ((14_800_000_000, 9_999_999), (9_876_543_210.55, 12_345_678),
                                               (1_000_000, 7_000_000)))
               for k, v in (("K1", a1), ("K2", a2))]
    return write_inbox(folder, roster=PEOPLE, indicators=INDICATORS, role_kpis=ROLE, actuals=actuals)


def test_value_columns_are_wide_enough_for_ten_billion(tmp_path: Path) -> None:
    result = run_batch(big_inbox(tmp_path / "inbox"), "2026-10", tmp_path / "out", load_policy(), jobs=1)
    assert result.exit_code == 0
    book = openpyxl.load_workbook(result.period_dir / "departments" / "销售部.xlsx")
    sheet = book.worksheets[1]
    widest = len("14,800,000,000.00")
    widths = {col: d.width for d in sheet.column_dimensions.values() for col in range(d.min, d.max + 1)}
    for col in (7, 8, 9, 10):  # base, target, stretch, actual
        assert widths[col] >= widest + 1, col
    name_cell = next(c for row in sheet.iter_rows() for c in row if c.value == LONG_NAME)
    assert name_cell.alignment.wrap_text  # too long for the column: wrapped, not cut


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="LibreOffice and poppler are not installed")
def test_printed_outputs_show_no_hashes(tmp_path: Path) -> None:
    result = run_batch(big_inbox(tmp_path / "inbox"), "2026-10", tmp_path / "out", load_policy(), jobs=1)
    books = [result.period_dir / "departments" / "销售部.xlsx", result.period_dir / "summary.xlsx"]
    pdf_dir = tmp_path / "pdf"
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless", "--convert-to", "pdf",
                    "--outdir", str(pdf_dir), *map(str, books)], check=True, capture_output=True, timeout=300)
    for book in books:
        text = subprocess.run(["pdftotext", "-layout", str(pdf_dir / f"{book.stem}.pdf"), "-"], check=True,
                              capture_output=True, text=True).stdout
        assert "14,800,000,000.00" in text or book.name == "summary.xlsx"
        assert "###" not in text, book.name
