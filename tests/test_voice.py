"""What people read around the numbers: money in 万元, one total line, one console voice, one CLI layer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from builders import write_inbox
from click.testing import CliRunner
from company import PERIOD, small_company

from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.policy import PolicyError, load_policy
from pipeline.texts import plural, say

SALES = [{"employee_id": f"E{i:02d}", "name": f"员工{i}", "department": "销售部", "position": "销售",
          "role_family": "销售"} for i in range(1, 4)]
MONEY = [
    {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率", "unit": "元"},
    {"indicator_id": "K2", "name": "回款额", "dimension": "业绩", "direction": "越高越好", "method": "阶梯", "unit": "RMB"},
    {"indicator_id": "K3", "name": "新客户数", "dimension": "业绩", "direction": "越高越好", "method": "比率", "unit": "个"},
]
MONEY_ROLE = [
    {"role_family": "销售", "period": PERIOD, "indicator_id": "K1", "weight": "50%", "target": 12_000_000},
    {"role_family": "销售", "period": PERIOD, "indicator_id": "K2", "weight": "30%", "base": 8_000_000,
     "target": 12_000_000, "stretch": 15_000_000},
    {"role_family": "销售", "period": PERIOD, "indicator_id": "K3", "weight": "20%", "target": 10},
]


def money_inbox(folder: Path) -> Path:
    actuals = [{"employee_id": e["employee_id"], "period": PERIOD, "indicator_id": k, "actual": v}
               for e, values in zip(SALES, ((14_800_000, 12_345_678.9, 12), (9_000_000, 7_000_000, 8),
                                            (12_000_000, 15_500_000, 10)))
               for k, v in zip(("K1", "K2", "K3"), values)]
    return write_inbox(folder, roster=SALES, indicators=MONEY, role_kpis=MONEY_ROLE, actuals=actuals,
                       dept_targets=[{"department": "销售部", "period": PERIOD, "indicator_id": "K1",
                                      "target": 36_000_000}])


def wan_policy(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text("display: {money_unit: 万元}\n", "utf-8")
    return load_policy(path)


def kpi(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def employee_rows(sheet) -> dict[str, list]:
    """The indicator table's rows of an employee sheet by indicator ID (column B)."""
    return {row[1].value: row for row in sheet.iter_rows(min_row=11) if row[1].value in ("K1", "K2", "K3")}


# ------------------------------------------------------------------------------ display.money_unit

def test_money_is_shown_in_wan_yuan_with_exact_values_and_the_same_formulas(tmp_path: Path) -> None:
    plain = run_batch(money_inbox(tmp_path / "inbox"), PERIOD, tmp_path / "plain", load_policy(), jobs=1)
    wan = run_batch(tmp_path / "inbox", PERIOD, tmp_path / "wan", wan_policy(tmp_path), jobs=1)
    assert plain.exit_code == wan.exit_code == 0
    books = [openpyxl.load_workbook(r.period_dir / "departments" / "销售部.xlsx") for r in (plain, wan)]
    before, after = (employee_rows(book.worksheets[1]) for book in books)
    for indicator in ("K1", "K2"):  # money in yuan: the format shows 万元, the name says so
        assert after[indicator][2].value == f"{before[indicator][2].value}(万元)"
        for col in (6, 7, 8, 9):  # base, target, stretch, actual: the exact values, another format
            assert after[indicator][col].value == before[indicator][col].value
            if after[indicator][col].value is not None:
                assert after[indicator][col].number_format == '0"."0,'
        for col in (10, 11):  # achievement and weighted score: the very same formulas
            assert after[indicator][col].value == before[indicator][col].value
    assert after["K1"][7].value == 12_000_000 and after["K1"][9].value == 14_800_000
    assert after["K3"][2].value == "新客户数" and after["K3"][7].number_format == "#,##0.00"  # a count stays
    assert wan.scores.totals["total"].tolist() == plain.scores.totals["total"].tolist()  # achievements unchanged
    cascade = openpyxl.load_workbook(wan.period_dir / "summary.xlsx")["目标分解 Cascade"]
    rows = [row for row in cascade.iter_rows() if row[2].value == "K1"]
    assert rows and rows[0][3].value == "销售额(万元)" and rows[0][4].value == 36_000_000
    assert rows[0][4].number_format == '0"."0,'


def test_money_unit_policy_key_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("display: {money_unit: 千元}\n", "utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.key == "display.money_unit" and "万元" in info.value.message("zh")
    assert load_policy().money_unit == "元"


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftotext") is None,
                    reason="LibreOffice and poppler are not installed")
def test_wan_yuan_prints_as_wan_yuan(tmp_path: Path) -> None:
    result = run_batch(money_inbox(tmp_path / "inbox"), PERIOD, tmp_path / "out", wan_policy(tmp_path), jobs=1)
    book = result.period_dir / "departments" / "销售部.xlsx"
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
                   check=True, capture_output=True, timeout=180)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "销售部.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "1200.0" in text and "1480.0" in text and "1234.6" in text  # 12,000,000 / 14,800,000 / 12,345,678.9
    assert "12,000,000" not in text and "###" not in text


# ------------------------------------------------------------------------------ one total line

def test_the_scorecard_shows_the_total_once(tmp_path: Path) -> None:
    result = run_batch(money_inbox(tmp_path / "inbox"), PERIOD, tmp_path / "out", load_policy(), jobs=1)
    book = openpyxl.load_workbook(result.period_dir / "departments" / "销售部.xlsx")
    sheet = book.worksheets[1]
    labels = [c.value for c in sheet["A"] if isinstance(c.value, str) and c.value.startswith(("总分", "Total"))]
    assert len(labels) == 1 and labels[0].startswith("总分(百分制"), labels
    total = next(row for row in sheet.iter_rows() if row[0].value == labels[0])
    assert re.fullmatch(r"=ROUND\(SUM\(L11:L13\)\*100,2\)", total[11].value)
    summary = book.worksheets[0]
    first = next(row for row in summary.iter_rows() if row[1].value == "E01")
    assert first[5].value.startswith("=SUM('E01 员工1'!$L$11:$L$13)")  # the summary's total: the sum itself
    assert first[6].value == f"='E01 员工1'!{total[11].coordinate}"  # its points: the one total line


# ------------------------------------------------------------------------------ one console voice

def many_warnings_inbox(folder: Path) -> Path:
    """12 people with two personal KPIs each: 12 'too few indicators' warnings; E12 has two bad actuals."""
    people = [{"employee_id": f"E{i:02d}", "name": f"员工{i}", "department": "销售部", "position": "销售",
               "role_family": "销售"} for i in range(1, 13)]
    kpis = [{"employee_id": p["employee_id"], "period": PERIOD, "indicator_id": k, "weight": w, "target": 10}
            for p in people for k, w in (("K1", "60%"), ("K3", "40%"))]
    actuals = [{"employee_id": p["employee_id"], "period": PERIOD, "indicator_id": k, "actual": 9}
               for p in people[:-1] for k in ("K1", "K3")]
    actuals += [{"employee_id": "E12", "period": PERIOD, "indicator_id": "K1", "actual": "N/A"},
                {"employee_id": "E12", "period": PERIOD, "indicator_id": "K3", "actual": "abc"}]
    return write_inbox(folder, roster=people, indicators=MONEY, employee_kpis=kpis, actuals=actuals)


def test_run_lists_ten_warnings_then_says_how_many_more(tmp_path: Path) -> None:
    inbox = many_warnings_inbox(tmp_path / "inbox")
    result = kpi("run", inbox, "--period", PERIOD, "--out", tmp_path / "out", "--jobs", 1, "--lang", "en")
    assert result.exit_code == 1, result.output
    counts = re.search(r"(\d+) errors?, (\d+) warnings?\n", result.output)
    warnings = int(counts.group(2))
    assert warnings > 10
    assert result.output.count("warning  [") == 10
    assert f"and {warnings - 10} more in summary.xlsx" in result.output
    chinese = kpi("run", inbox, "--period", PERIOD, "--out", tmp_path / "out", "--jobs", 1)
    assert f"还有 {warnings - 10} 条警告,见 summary.xlsx" in chinese.output


def test_validate_and_run_count_the_same(tmp_path: Path) -> None:
    inbox = many_warnings_inbox(tmp_path / "inbox")
    checked = kpi("validate", inbox, "--period", PERIOD, "--lang", "en")
    ran = kpi("run", inbox, "--period", PERIOD, "--out", tmp_path / "out", "--jobs", 1, "--lang", "en")
    v = re.search(r"Checked \d+ files?: (\d+) errors?, (\d+) warnings?\.", checked.output)
    r = re.search(r"\n  (\d+) errors?, (\d+) warnings?\n", ran.output)
    assert v and r, (checked.output, ran.output)
    assert v.groups() == r.groups() and int(v.group(2)) > 10
    demo_inbox = small_company(tmp_path / "small")  # 360 ratings: scoring's own warnings count in both
    checked = kpi("validate", demo_inbox, "--period", PERIOD, "--lang", "en")
    ran = kpi("run", demo_inbox, "--period", PERIOD, "--out", tmp_path / "out2", "--jobs", 1, "--lang", "en")
    v = re.search(r"Checked \d+ files?: (\d+) errors?, (\d+) warnings?\.", checked.output)
    r = re.search(r"\n  (\d+) errors?, (\d+) warnings?\n", ran.output)
    assert v.groups() == r.groups(), (checked.output, ran.output)


def test_every_reason_of_an_unscored_employee_is_shown(tmp_path: Path) -> None:
    inbox = many_warnings_inbox(tmp_path / "inbox")
    result = kpi("run", inbox, "--period", PERIOD, "--out", tmp_path / "out", "--jobs", 1, "--lang", "en")
    block = result.output[result.output.index("- E12"):]
    assert "'N/A'" in block and "'abc'" in block, block
    assert block.count("· ") >= 2
    run = run_batch(inbox, PERIOD, tmp_path / "out2", load_policy(), jobs=1)
    row = run.scores.unscored.set_index("employee_id").loc["E12"]
    assert row["reason_en"].count("\n") == 1 and row["reason_zh"].count("\n") == 1 and row["problems"] == 2


def test_plural_forms() -> None:
    assert plural(1, "error") == "1 error" and plural(2, "error") == "2 errors" and plural(0, "warning") == "0 warnings"


def test_one_error_is_one_error(tmp_path: Path) -> None:
    inbox = many_warnings_inbox(tmp_path / "inbox")
    result = kpi("validate", inbox, "--lang", "en")
    assert "2 errors" in result.output and "(s)" not in result.output
    single = small_company(tmp_path / "small", mistake=True)
    assert "Checked 7 files: 1 error, " in kpi("validate", single, "--lang", "en").output


# ------------------------------------------------------------------------------ help and usage errors

def test_top_level_help_is_bilingual_and_lists_every_command() -> None:
    result = kpi("--help")
    assert result.exit_code == 0
    for text in ("用法 Usage:", "选项 Options:", "命令 Commands:", "显示本帮助并退出。 Show this message and exit.",
                 "退出码 Exit codes:", "由 HR 填写的 Excel 模板生成 KPI 计分卡。"):
        assert text in result.output
    for name in ("templates", "validate", "run", "demo", "weights", "diff", "verify", "trace"):
        assert re.search(rf"^  {name}\s+\S", result.output, re.M), name
    assert "逐个单元格检查收件箱 check the inbox, cell by cell" in result.output


def test_no_internal_jargon_in_any_help() -> None:
    names = ["templates", "validate", "run", "demo", "weights", "diff", "verify", "trace"]
    for args in [["--help"], *([name, "--help"] for name in names)]:
        text = kpi(*args).output
        assert not re.search(r"seed \d|SPEC|§|NOTES|种子", text), (args, text)


@pytest.mark.parametrize(("args", "zh", "en"), [
    (["validate", "nowhere"], "“nowhere”不存在,请检查路径", "Directory 'nowhere' does not exist"),
    (["validate", ".", "--bogus"], "没有选项 --bogus", "No such option"),
    (["run", "."], "缺少选项 '--period'", "Missing option '--period'"),
    (["nosuch"], "没有命令“nosuch”", "No such command 'nosuch'"),
    (["verify", ".", "--lang", "both"], "不是可选的值", "'both' is not one of"),
    (["run", ".", "--period", "2026-10", "--jobs", "0"], "超出允许的范围", "not in the range"),
])
def test_usage_errors_are_bilingual(args: list[str], zh: str, en: str) -> None:
    result = kpi(*args)
    assert result.exit_code == 2
    assert zh in result.output and en in result.output, result.output
    assert "错误:" in result.output and "Error:" in result.output and "查看帮助" in result.output
    english = kpi(*args, "--lang", "en") if "--lang" not in args else None
    if english is not None and "nosuch" not in args:
        assert en in english.output and not re.search(r"[\u4e00-\u9fff]", english.output), english.output


# ------------------------------------------------------------------------------ one CLI layer, one --lang

def test_one_bilingual_helper_with_one_meaning() -> None:
    assert say("已完成", "Done", "zh") == "已完成 Done" and say("已完成", "Done", "en") == "Done"
    assert say("甲", "A", "zh", "\n") == "甲\nA"


def test_verify_and_trace_live_in_the_cli_with_the_same_lang(tmp_path: Path) -> None:
    import pipeline.audit
    import pipeline.trace

    assert not hasattr(pipeline.audit, "verify_command") and not hasattr(pipeline.trace, "trace_command")
    assert {"verify", "trace"} <= set(main.commands)
    result = run_batch(small_company(tmp_path / "inbox"), PERIOD, tmp_path / "out", load_policy(), jobs=1)
    both = kpi("verify", result.period_dir)
    assert both.exit_code == 0 and "校验通过" in both.output and "Verified" in both.output
    english = kpi("verify", result.period_dir, "--lang", "en")
    assert "Verified" in english.output and "校验" not in english.output
    missing = kpi("verify", tmp_path / "nowhere")
    assert missing.exit_code == 1 and "无法校验" in missing.output and "Cannot verify" in missing.output
    traced = kpi("trace", result.period_dir, "S002")
    assert traced.exit_code == 0 and "完成率 Achievement" in traced.output and "总分(百分制) Points" in traced.output
    traced_en = kpi("trace", result.period_dir, "S002", "--lang", "en")
    assert "Achievement" in traced_en.output and "完成率" not in traced_en.output
    assert "weighted_score" not in traced.output  # labels, not field names
    for command in ("validate", "run", "demo", "weights", "verify", "trace"):
        lang = next(p for p in main.commands[command].params if p.name == "lang")
        assert list(lang.type.choices) == ["zh", "en"] and lang.default == "zh", command


# ------------------------------------------------------------------------------ errors that point at the cause

def unrecognised_inbox(folder: Path, headers: list[str], name: str = "研发数据.xlsx") -> Path:
    """The small company with its R&D actuals in a file whose headers no template has."""
    from builders import write_sheets

    small_company(folder)
    (folder / "actuals_研发部.xlsx").unlink()
    write_sheets(folder / name, {"Sheet1": [headers, ["R001", PERIOD, "R01", 0.95], ["R001", PERIOD, "R02", 0.02],
                                            ["R002", PERIOD, "R01", 0.85]]})
    return folder


def test_an_unrecognised_file_lists_the_closest_templates_headers_and_its_own(tmp_path: Path) -> None:
    from pipeline.cli import validate_inbox

    inbox = unrecognised_inbox(tmp_path / "inbox", ["人员编码", "考核月", "指标代码", "完成数"])
    [unknown] = [f for f in validate_inbox(inbox, load_policy(), PERIOD).findings if f.rule == "unknown_kind"]
    assert unknown.file == "研发数据.xlsx" and unknown.sheet == "Sheet1"
    assert "最接近的是“实际值”模板" in unknown.message_zh
    assert "员工编号*、考核周期*、指标编号*、实际值*" in unknown.message_zh
    assert "本文件工作表“Sheet1”的表头是:人员编码、考核月、指标代码、完成数" in unknown.message_zh
    assert "Closest is the Actuals template, whose headers are: Employee ID*, Period*, Indicator ID*, Actual*" \
        in unknown.message_en
    assert "this file's sheet 'Sheet1' has: 人员编码, 考核月, 指标代码, 完成数" in unknown.message_en
    assert "Rename the headers as in the template" in unknown.message_en


def test_nothing_alike_names_no_template(tmp_path: Path) -> None:
    from pipeline.cli import validate_inbox

    inbox = unrecognised_inbox(tmp_path / "inbox", ["甲", "乙", "丙", "丁"], name="misc.xlsx")
    [unknown] = [f for f in validate_inbox(inbox, load_policy(), PERIOD).findings if f.rule == "unknown_kind"]
    assert "最接近" not in unknown.message_zh and "Closest" not in unknown.message_en
    assert unknown.message_en.startswith("Cannot tell which template this file is")


def test_an_unrecognised_file_costs_one_finding_not_one_per_missing_actual(tmp_path: Path) -> None:
    inbox = unrecognised_inbox(tmp_path / "inbox", ["人员编码", "考核月", "指标代码", "完成数"], name="data.xlsx")
    result = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    rules = [f.rule for f in result.errors]
    assert "missing_actual" not in rules
    assert rules.count("unknown_kind") == 1 and rules.count("refused_unscored") == 1
    [refused] = [f for f in result.errors if f.rule == "refused_unscored"]
    assert "data.xlsx" in refused.message_en and "no actuals for indicators R01, R02, R03" in refused.message_en
    assert set(result.scores.unscored["employee_id"]) >= {"R001", "R002"}


def test_identical_rows_are_one_duplicate_and_differing_rows_a_conflict(tmp_path: Path) -> None:
    from pipeline.cli import validate_inbox

    actuals = [{"employee_id": e["employee_id"], "period": PERIOD, "indicator_id": k, "actual": v}
               for e in SALES for k, v in (("K1", 12_000_000), ("K2", 12_000_000), ("K3", 10))]
    actuals += [{"employee_id": "E01", "period": PERIOD, "indicator_id": "K1", "actual": 12_000_000, "note": "再录一次"},
                {"employee_id": "E02", "period": PERIOD, "indicator_id": "K3", "actual": 11}]
    inbox = write_inbox(tmp_path / "inbox", roster=SALES, indicators=MONEY, role_kpis=MONEY_ROLE, actuals=actuals)
    inputs = validate_inbox(inbox, load_policy(), PERIOD)
    duplicates = [f for f in inputs.findings if f.rule == "duplicate"]
    conflicts = [f for f in inputs.findings if f.rule == "conflict"]
    assert len(duplicates) == 1 and not duplicates[0].is_error
    [duplicate] = duplicates
    assert duplicate.cell == "D11" and duplicate.employee_id == "E01"  # on the extra copy
    assert "actuals.xlsx!实际值 Actuals!D2" in duplicate.message_en and "D11" in duplicate.message_en
    assert "counts once" in duplicate.message_en and "只计一次" in duplicate.message_zh
    assert len(conflicts) == 2 and all(f.is_error and f.employee_id == "E02" for f in conflicts)
    used = inputs.actuals[(inputs.actuals["employee_id"] == "E01") & (inputs.actuals["indicator_id"] == "K1")]
    assert len(used) == 1  # the row is used once
    result = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    assert "E01" in set(result.scores.totals["employee_id"]) and "E02" in set(result.scores.unscored["employee_id"])
    assert [f.rule for f in result.warnings].count("duplicate") == 1  # counted once


def test_kpi_weights_and_the_batch_compute_weights_the_same_way(tmp_path: Path, monkeypatch) -> None:
    import json

    from builders import sheet_name, table, write_sheets

    import pipeline.batch

    scores = [{"role_family": "销售", "expert_id": x, "indicator_id": k, "score": s}
              for x, row in (("X1", (8, 6, 4)), ("X2", (9, 6, 3)), ("X3", (8, 5, 4)))
              for k, s in zip(("K1", "K2", "K3"), row)]
    path = write_sheets(tmp_path / "weights.xlsx", {sheet_name("weights"): table("weights", scores)})
    calls = []
    real = pipeline.batch.compute_inbox_weights
    monkeypatch.setattr(pipeline.batch, "compute_inbox_weights", lambda *a: calls.append(a) or real(*a))
    result = kpi("weights", path, "--json")
    assert result.exit_code == 0, result.output
    assert len(calls) == 1  # the batch's function, not a second copy of it
    [family] = json.loads(result.output)
    assert family["role_family"] == "销售" and round(sum(family["weights"].values()), 9) == 1
    assert family["weights"]["K1"] > family["weights"]["K2"] > family["weights"]["K3"]
