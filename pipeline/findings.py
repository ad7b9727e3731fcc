"""Findings: what validation says about an input, in Chinese and English, naming the cell.

Validation never raises on the first problem; it returns a list of findings. Every
message lives in RULES below, once, so the two languages cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from pipeline.texts import say

ERROR = "error"
WARNING = "warning"

# rule -> (severity, Chinese template, English template). Placeholders are filled from the
# finding's context (column, value, employee, ...). Each message says what is wrong and how
# to fix it.
RULES: dict[str, tuple[str, str, str]] = {
    # reading
    "unreadable": (ERROR, "无法读取该文件:{reason}", "Cannot read this file: {reason_en}"),
    "unknown_kind": (
        ERROR,
        "无法识别该文件属于哪种模板(工作表名与表头都不匹配)。{hint}请按模板改写表头,或使用 `kpi templates` 生成的模板。",
        "Cannot tell which template this file is (no sheet name or header matches). {hint_en}"
        "Rename the headers as in the template, or use a template from `kpi templates`.",
    ),
    "ambiguous_kind": (
        ERROR,
        "该文件同时像 {kinds} 两种模板,无法判断。请每个文件只放一种模板。",
        "This file looks like several templates ({kinds}); put one template per file.",
    ),
    "missing_sheet": (
        ERROR,
        "缺少工作表“{sheet_label}”。",
        "Sheet '{sheet_label}' is missing.",
    ),
    "no_header": (
        ERROR,
        "在工作表中找不到表头行。请保留模板的表头(如“{example_header}”)。",
        "No header row found in this sheet. Keep the template's header row (e.g. '{example_header}').",
    ),
    "missing_column": (
        ERROR,
        "缺少必填列“{column}”。请按模板补上这一列的表头。",
        "Required column '{column_en}' is missing. Add this column header as in the template.",
    ),
    "duplicate_column": (
        ERROR,
        "列“{column}”出现了两次({cells})。请删除多余的一列。",
        "Column '{column_en}' appears twice ({cells}). Delete the extra one.",
    ),
    "formula_no_value": (
        ERROR,
        "该单元格是公式({value}),但文件中没有保存计算结果。请在 Excel 中打开、重新计算并保存。",
        "This cell holds a formula ({value}) with no saved result. Open the file in Excel, "
        "recalculate and save it.",
    ),
    "error_value": (
        ERROR,
        "该单元格是错误值 {value}。请修正公式或填入数值。",
        "This cell holds the error value {value}. Fix the formula or type the value.",
    ),
    # values
    "required": (ERROR, "“{column}”为必填项,不能为空。", "'{column_en}' is required and is empty."),
    "not_a_number": (
        ERROR,
        "“{column}”应为数字,但填的是“{value}”。请填写数字(可带 % 或千分位)。",
        "'{column_en}' must be a number but holds '{value}'. Type a number (%, thousands "
        "separators are fine).",
    ),
    "bad_choice": (
        ERROR,
        "“{column}”的值“{value}”不在可选范围内。可选:{choices}。",
        "'{column_en}' value '{value}' is not allowed. Choose one of: {choices}.",
    ),
    "bad_period": (
        ERROR,
        "考核周期“{value}”无法识别。请写成 2026-10、2026-Q3、2026-H1 或 2026。",
        "Period '{value}' is not understood. Write 2026-10, 2026-Q3, 2026-H1 or 2026.",
    ),
    "out_of_range": (
        ERROR,
        "“{column}”的值 {value} 超出范围 {low}–{high}。",
        "'{column_en}' value {value} is outside {low}–{high}.",
    ),
    "not_half_step": (
        ERROR,
        "评分 {value} 只能是整数或 0.5 分(如 3、3.5)。",
        "Score {value} must be a whole or half point (e.g. 3, 3.5).",
    ),
    "negative": (ERROR, "“{column}”不能为负数(填的是 {value})。", "'{column_en}' cannot be negative (got {value})."),
    "duplicate_key": (
        ERROR,
        "{what}重复:{key} 同时出现在 {cells}。请只保留一行。",
        "Duplicate {what_en}: {key} appears in {cells}. Keep only one row.",
    ),
    "duplicate": (
        WARNING,
        "重复的行:{key} 在 {cells} 填了完全相同的内容,只计一次(使用 {kept})。请删除多余的行。",
        "Duplicate row: {key} is given with the same values in {cells}; it counts once ({kept} is used). "
        "Delete the extra rows.",
    ),
    "conflict": (
        ERROR,
        "实际值冲突:{key} 在 {cells} 各填了一次。请删除其中一行。",
        "Conflicting actuals: {key} is given in {cells}. Delete one of the rows.",
    ),
    # references
    "unknown_employee": (
        ERROR,
        "员工编号“{value}”不在花名册中。{hint}请检查编号,或先把该员工加入花名册。",
        "Employee ID '{value}' is not in the roster. {hint_en}Check the ID or add the employee to the roster.",
    ),
    "unknown_manager": (
        ERROR,
        "直属上级编号“{value}”不在花名册中。{hint}",
        "Manager ID '{value}' is not in the roster. {hint_en}",
    ),
    "manager_cycle": (
        WARNING,
        "直属上级形成循环:{chain}(本人或互为上级)。按经理分发时,循环中的人会出现在彼此的经理工作簿中。请把最上层那个人的“直属上级编号”改为其真正的上级,或留空。",
        "The manager column goes round in a loop: {chain} (someone is their own manager, or two people manage "
        "each other). Split by manager, the people in the loop appear in each other's workbooks. Set the top "
        "person's Manager ID to their real manager, or leave it blank.",
    ),
    "unknown_indicator": (
        ERROR,
        "指标编号“{value}”不在指标库中。{hint}请检查编号,或先在指标库中添加该指标。",
        "Indicator ID '{value}' is not in the indicator library. {hint_en}Check the ID or add it to the library.",
    ),
    "unknown_role_family": (
        WARNING,
        "岗位类别“{value}”在花名册中没有员工。",
        "Role family '{value}' has no employee in the roster.",
    ),
    "missing_input": (
        ERROR,
        "收件箱中没有{what}文件,无法评分。",
        "The inbox has no {what_en} file; nothing can be scored.",
    ),
    # agreements and scoring preconditions
    "weight_sum": (
        ERROR,
        "{who} 在 {period} 的指标权重合计为 {total},应为 100%(行:{cells})。请调整权重。",
        "Weights of {who_en} for {period} sum to {total}, not 100% (rows: {cells}). Adjust the weights.",
    ),
    "tiers_not_monotonic": (
        ERROR,
        "阶梯计分要求 基础值→目标值→冲刺值 依次{order}(此行为 {b} / {t} / {s})。",
        "Tiered scoring needs base → target → stretch {order_en} (this row: {b} / {t} / {s}).",
    ),
    "missing_target": (
        ERROR,
        "指标 {indicator} 使用“{method}”计分,必须填写目标值。",
        "Indicator {indicator} is scored by {method_en} and needs a target.",
    ),
    "missing_tiers": (
        ERROR,
        "指标 {indicator} 使用阶梯计分,必须同时填写基础值、目标值和冲刺值。",
        "Indicator {indicator} is tiered and needs base, target and stretch.",
    ),
    "zero_target": (
        ERROR,
        "指标 {indicator} 按比率计分,目标值不能为 0。目标确实为 0 时,请改用阶梯或达标计分。",
        "Indicator {indicator} is scored as a ratio; its target cannot be 0. Where the target really is 0, "
        "score it as tiered or pass/fail instead.",
    ),
    "missing_actual": (
        ERROR,
        "员工 {employee} 在 {period} 缺少指标 {indicator} 的实际值,无法评分。",
        "Employee {employee} has no actual for indicator {indicator} in {period}; cannot score.",
    ),
    "missing_rating": (
        ERROR,
        "员工 {employee} 在 {period} 缺少指标 {indicator} 的行为评分,无法评分。",
        "Employee {employee} has no rating for indicator {indicator} in {period}; cannot score.",
    ),
    "period_beside_months": (
        ERROR,
        "员工 {employee} 的指标 {indicator} 在 {period} 既有整期{what}({direct}),又有月度{what}({monthly}),"
        "无法判断以哪个为准。请只保留一种:删除整期行或删除月度行。",
        "Employee {employee} has {what_en} for indicator {indicator} both for {period} itself ({direct}) and by "
        "month ({monthly}); which one counts cannot be told. Keep one: delete the period row or the monthly rows.",
    ),
    "missing_months": (
        WARNING,
        "员工 {employee} 的指标 {indicator} 在 {period} 缺少 {months} 的实际值,仅按已有月份({present})汇总计分。"
        "请补齐缺失月份的实际值。",
        "Employee {employee} has no actual for indicator {indicator} in {months_en}; {period} is rolled up from "
        "{present_en} only. Add the missing months' actuals.",
    ),
    "missing_months_error": (
        ERROR,
        "员工 {employee} 的指标 {indicator} 在 {period} 缺少 {months} 的实际值(已有 {present}),"
        "按政策 rollup.missing_months: error 不予汇总计分。请补齐缺失月份的实际值。",
        "Employee {employee} has no actual for indicator {indicator} in {months_en} (has {present_en}); the "
        "policy (rollup.missing_months: error) does not roll up {period} from part of it. Add the missing months.",
    ),
    "rating_unweighted": (
        ERROR,
        "员工 {employee} 的指标 {indicator} 只有{relations}的评分,而政策对岗位类别 {family} 只计入{counted}的评分,"
        "无法评分。请补充这些评价关系的评分,或在政策 rater_weights 中调整权重。",
        "Employee {employee} is rated on indicator {indicator} by {relations_en} only; the policy counts "
        "{counted_en} for role family {family}. Add ratings from those relations or change rater_weights in "
        "the policy.",
    ),
    "no_agreement": (
        ERROR,
        "员工 {employee} 在 {period} 没有任何考核指标(个人指标或岗位指标)。",
        "Employee {employee} has no KPIs for {period} (neither personal nor role KPIs).",
    ),
    "no_supervisor_rating": (
        WARNING,
        "员工 {employee} 的指标 {indicator} 没有上级评分。",
        "Employee {employee} has no supervisor rating for indicator {indicator}.",
    ),
    "rating_not_rating_indicator": (
        WARNING,
        "指标 {indicator} 不是“评分”类指标,该行评分不会计入。",
        "Indicator {indicator} is not a rating indicator; this rating is not counted.",
    ),
    "invalid_employee_row": (
        ERROR,
        "员工 {employee} 的数据有错误({detail}),本期不评分。",
        "Employee {employee} has errors in the input ({detail}) and is not scored.",
    ),
    # scale and ratio checks
    "percent_slip": (
        ERROR,
        "看起来 {value} 本意是 {value}%:请写成 {value}% 或 {fraction}。指标 {indicator} 的单位是 %,"
        "而{other}是 {other_value}({other_cell})。",
        "Looks like {value} was meant as {value}%: write {value}% or {fraction}. Indicator {indicator} "
        "is in %, and the {other_en} is {other_value} ({other_cell}).",
    ),
    "scale_ratio": (
        WARNING,
        "{actual} 是目标值 {target} 的 {times}(员工 {employee},指标 {indicator},{period}):"
        "请检查单位(如 元 与 万元)。",
        "{actual_en} is {times_en} the target {target} (employee {employee}, indicator {indicator}, {period}): "
        "check the unit (e.g. yuan vs 10k yuan).",
    ),
    "ratio_stretch_side": (
        ERROR,
        "指标 {indicator} 按比率计分且{direction},冲刺值 {value} 应{side}目标值 {target}。"
        "请改正冲刺值,或清空它(比率计分不使用冲刺值)。",
        "Indicator {indicator} is a ratio where {direction_en}: its stretch {value} should be {side_en} the "
        "target {target}. Correct the stretch, or leave it empty (ratio scoring does not use it).",
    ),
    "negative_target": (
        ERROR,
        "指标 {indicator} 按比率计分,目标值必须大于 0(填的是 {value})。比率与线性计分都要除以目标值;"
        "请改用阶梯计分(填写基础值、目标值、冲刺值)或达标计分。",
        "Indicator {indicator} is scored as a ratio; its target must be above 0 (got {value}). Ratio and "
        "linear scoring both divide by the target: use tiered scoring (base, target, stretch) or pass/fail.",
    ),
    "negative_actual_lower_ratio": (
        ERROR,
        "指标 {indicator} 越低越好、按比率(目标值 ÷ 实际值)计分,实际值 {value} 为负数,得分没有意义。"
        "请核对实际值;若负数确实可能,请在政策中设 achievement.lower_is_better: linear,或改用阶梯计分。",
        "Indicator {indicator} is lower-is-better scored as target ÷ actual, and the actual {value} is "
        "negative, which gives a meaningless score. Check the actual; if negative values are genuine, set "
        "achievement.lower_is_better: linear in the policy, or use tiered scoring.",
    ),
    # design checks (warnings)
    "indicator_count": (
        WARNING,
        "{who} 在 {period} 有 {count} 个指标,建议 {low}–{high} 个。",
        "{who_en} has {count} indicators in {period}; {low}–{high} are advised.",
    ),
    "performance_share": (
        WARNING,
        "{who} 在 {period} 的业绩类指标权重仅 {share},建议不低于 {minimum}。",
        "{who_en} puts only {share} of the weight on performance indicators in {period}; at least {minimum} is advised.",
    ),
    "equal_weights": (
        WARNING,
        "{who} 在 {period} 的 {count} 个指标权重完全相同,权重没有体现重点。",
        "All {count} indicators of {who_en} in {period} have the same weight; weights show no priority.",
    ),
    "dimension_share": (
        WARNING,
        "{who} 在 {period} 的维度权重为 {shares},与政策预期 {expected} 不符。",
        "{who_en} weighs the dimensions {shares_en} in {period}; the policy expects {expected_en}.",
    ),
    "calibration_easy": (
        WARNING,
        "指标 {indicator} 有 {share} 的员工达成 100%,目标可能偏低。",
        "{share} of employees reach 100% on indicator {indicator}: the target may be too low.",
    ),
    "calibration_hard": (
        WARNING,
        "指标 {indicator} 只有 {share} 的员工达成 100%,目标可能偏高。",
        "Only {share} of employees reach 100% on indicator {indicator}: the target may be too high.",
    ),
    # weights
    "ahp_not_square": (
        ERROR,
        "判断矩阵必须是方阵,且首行与首列的指标编号一致。请在首行和首列按同一顺序列出相同的指标编号,每个编号只写一次。",
        "The pairwise matrix must be square with the same indicator IDs across the first row and down the first column. "
        "List the same IDs, in the same order and each once, across the first row and down the first column.",
    ),
    "ahp_range": (
        ERROR,
        "判断值 {value} 超出 1/9–9 的范围。请填写 1 到 9 的整数或其倒数(如 3 或 1/3)。",
        "Judgment {value} is outside the 1/9–9 scale. Type a whole number from 1 to 9 or its reciprocal (3 or 1/3).",
    ),
    "ahp_reciprocal": (
        ERROR,
        "判断值不互为倒数:{cell} 为 {value},{other_cell} 应为 {expected}。",
        "Judgments are not reciprocal: {cell} is {value}, so {other_cell} should be {expected}.",
    ),
    "ahp_diagonal": (ERROR, "对角线上的值必须为 1。请填 1 或留空。", "Diagonal values must be 1. Type 1 or leave the cell blank."),
    "ahp_inconsistent": (
        ERROR,
        "{role_family} 的判断矩阵一致性比率 CR = {cr},应小于 0.10,这些权重未被采用。最可能需要调整的判断:{culprits}。"
        "请重新考虑这些判断后再计算。",
        "The pairwise matrix of {role_family} has CR = {cr}, which must be below 0.10: its weights were not used. "
        "Judgments most responsible: {culprits_en}. Reconsider these judgments and run again.",
    ),
    "expert_outlier": (
        WARNING,
        "专家 {expert} 对 {role_family} 的打分与其他专家偏差较大(平均偏差 {deviation})。"
        "请与该专家核实打分;权重仍按全部专家的打分计算。",
        "Expert {expert} deviates strongly from the others for {role_family} (mean deviation {deviation}). "
        "Check the scores with this expert; the weights still count every expert's scores.",
    ),
    "policy": (ERROR, "政策配置错误:{detail}", "Policy error: {detail}"),
    # weights (added by weights module)
    "ahp_too_large": (
        ERROR,
        "判断矩阵有 {count} 个指标,超出 RI 表({ri_table})覆盖的 {maximum} 个,无法检验一致性。"
        "请分两层(维度 → 指标)分别打分。",
        "The pairwise matrix has {count} indicators; the RI table ({ri_table_en}) covers at most "
        "{maximum}, so consistency cannot be checked. Judge in two levels (dimensions → indicators).",
    ),
    # forced distribution
    "forced_tie": (
        WARNING,
        "{group}:{count} 名员工并列 {total} 分,超出 {grades} 等级名额 {excess} 人(该组 {size} 人,名额 {quota} 人)。"
        "并列者不拆分,均为 {kept}。请核实并列分数;如须严守名额,请由考核小组决定并列者的等级并记录理由。",
        "{group_en}: {count} employees tied at {total} exceed the {grades} quota by {excess} (group of {size}, "
        "quota {quota}). A tie is never split: all {count} keep {kept}. Check the tied scores; to hold the "
        "quota, the review committee decides between them and records why.",
    ),
    # period scoping
    "other_period": (
        WARNING,
        "〔属于考核周期 {period} 的{what},不影响本次 {run_period} 的评分〕{message}",
        "[{what_en} of period {period}: does not affect this {run_period} run] {message_en}",
    ),
    "no_period_data": (
        ERROR,
        "收件箱中没有 {period} 的数据。收件箱中有的考核周期:{periods}",
        "The inbox has no data for {period}. Periods in the inbox: {periods_en}",
    ),
    # copies and unreadable inputs
    "duplicate_file": (
        WARNING,
        "该文件与 {original} 内容完全相同(是它的副本),已忽略,只使用了 {original}。可以删除此文件。",
        "This file is identical to {original} (a copy of it): it was ignored and {original} was used. "
        "You can delete it.",
    ),
    "copied_file": (
        ERROR,
        "该文件看起来是 {original} 的副本:{rows} 行数据中有 {shared} 行与之完全相同,{differ} 行不同。"
        "两份都用会让这些行重复,所以只使用了 {original},此文件的数据未使用。请把需要的修改改进 {original} "
        "后删除此文件(或删除 {original},只保留此文件)。",
        "This file looks like a copy of {original}: {shared} of its {rows} data rows are identical to rows "
        "there, {differ} differ. Using both would count those rows twice, so only {original} was used and "
        "this file's rows were not. Make the changes you want in {original} and delete this file (or "
        "delete {original} and keep this one).",
    ),
    "unreadable_folder": (
        ERROR,
        "无法打开文件夹 {folder}:{reason}。其中的文件都没有读取。",
        "Cannot open the folder {folder}: {reason_en}. None of its files were read.",
    ),
    "refused_unscored": (
        ERROR,
        "{count} 名员工在 {period} 无法评分,因为 {files} 未能读取({reason}):缺少{what}。"
        "请修复或替换该文件后重新运行。",
        "{count_en} employees cannot be scored for {period} because {files_en} {were_en} refused ({reason_en}): "
        "no {what_en}. Fix or replace the file and run again.",
    ),
    "input_changed": (
        WARNING,
        "该文件在本次运行读取之后{how}{detail}:结果按读取时的内容计算,审计清单记录的也是那时内容的 SHA-256。"
        "如需按新内容计分,请重新运行。",
        "This file {how_en} after the run read it{detail_en}: the results use its content as read, and the "
        "manifest records that content's SHA-256. Run again to use the new content.",
    ),
    # adjustments (agreements sheet 调整记录 Adjustments)
    "adjustment_old_value": (
        ERROR,
        "{who} 指标 {indicator} 的{field}调整:原值 {old}({adjustment_cell})与 {period} 协议中的值 {agreed}"
        "({agreement_cell})不一致。请把原值改为协议中的值,或先修正协议。",
        "Adjustment of the {field_en} of {indicator} for {who_en}: the old value {old} ({adjustment_cell}) differs "
        "from the agreement's {agreed_en} for {period} ({agreement_cell}). Make the old value the agreed one, or "
        "correct the agreement first.",
    ),
    "adjustment_no_agreement": (
        ERROR,
        "{who} 在 {period} 的协议中没有指标 {indicator},无法调整。请检查指标编号或协议。",
        "{who_en} has no indicator {indicator} in the agreement for {period}, so it cannot be adjusted. "
        "Check the indicator ID or the agreement.",
    ),
    "adjustment_weight_sum": (
        ERROR,
        "调整后 {who} 在 {period} 的权重合计为 {total},应为 100%(调整行:{cells})。"
        "调整权重时请同时调整其他指标,使合计仍为 100%。",
        "After adjustment the weights of {who_en} for {period} sum to {total}, not 100% (adjustments: {cells}). "
        "When changing a weight, change the others too so they still sum to 100%.",
    ),
    "adjustment_repeated": (
        WARNING,
        "{who} 的指标 {indicator} 在 {quarter} 内第二次调整(之前:{earlier})。季度内一般不轻易调整,请确认。",
        "Indicator {indicator} of {who_en} is adjusted a second time within {quarter} (earlier: {earlier}). "
        "Targets are rarely changed twice in a quarter: please confirm.",
    ),
    "adjustment_unapproved": (
        ERROR,
        "调整记录缺少“{column}”。每项调整都须写明原因和审批人,才能记录在案并计分。",
        "The adjustment has no '{column_en}'. Every adjustment needs a reason and an approver to be kept on "
        "record and used.",
    ),
    "adjustment_no_owner": (
        ERROR,
        "调整记录既没有员工编号也没有岗位类别。请填写其中一项,说明调整的是谁的协议。",
        "The adjustment names neither an employee ID nor a role family. Fill in one of them to say whose "
        "agreement changes.",
    ),
    "adjustment_unknown_role_family": (
        ERROR,
        "岗位类别“{value}”在花名册中没有员工,该调整无法应用。请检查岗位类别。",
        "Role family '{value}' has no employee in the roster, so the adjustment cannot apply. Check the role "
        "family.",
    ),
    "adjustment_bad_value": (
        ERROR,
        "调整后 {who} 的指标 {indicator} 在 {period} 无法计分:基础值/目标值/冲刺值为 {values}({cells})。"
        "比率指标目标须大于 0,阶梯指标三档须按方向依次排列。请修正新值。",
        "After adjustment, indicator {indicator} of {who_en} cannot be scored for {period}: base/target/stretch "
        "are {values} ({cells}). A ratio target must be above 0 and tiers must be in order. Correct the new value.",
    ),
}


@dataclass(frozen=True)
class Finding:
    """One problem in the inputs, pinned to a cell where there is one."""

    severity: str
    rule: str
    message_zh: str
    message_en: str
    file: str = ""
    sheet: str = ""
    cell: str = ""
    column: str = ""
    value: str = ""
    employee_id: str = ""
    period: str = ""
    # Other cells of the same sheet that the same problem involves (every row of a weight set
    # that does not sum to 100%): the errors workbook marks them too.
    also: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def where(self) -> str:
        """`file!sheet!cell`, as an auditor would write it."""
        parts = [p for p in (self.file, self.sheet, self.cell) if p]
        return "!".join(parts)

    def message(self, lang: str = "zh") -> str:
        """English alone with `en`; otherwise the Chinese with the English beside it."""
        return say(self.message_zh, self.message_en, lang, " / ")

    def as_dict(self) -> dict:
        return asdict(self)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def finding(rule: str, *, severity: str | None = None, file: str = "", sheet: str = "",
            cell: str = "", column: str = "", value: object = "", employee_id: str = "",
            period: str = "", also: tuple[str, ...] = (), **context: object) -> Finding:
    """Build a finding from the RULES catalogue; missing placeholders render empty."""
    default_severity, zh, en = RULES[rule]
    text_value = "" if value is None else str(value)
    ctx = _Blank(column=column, value=text_value, period=period, employee=employee_id, cell=cell,
                 file=file, sheet=sheet, **context)
    head, _, tail = column.partition(" ")
    if tail and any("\u4e00" <= ch <= "\u9fff" for ch in head):  # "员工编号 Employee ID" -> "Employee ID"
        ctx.setdefault("column_en", tail)
    for key in list(ctx):  # `{x_en}` falls back to `{x}` where no English text is given
        ctx.setdefault(f"{key}_en", ctx[key])
    return Finding(
        severity=severity or default_severity,
        rule=rule,
        message_zh=zh.format_map(ctx).strip(),
        message_en=en.format_map(ctx).strip(),
        file=file,
        sheet=sheet,
        cell=cell,
        column=column,
        value=text_value,
        employee_id=employee_id,
        period=period,
        also=tuple(also),
    )


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.is_error for f in findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Stable order for screens and files: by file, sheet, row, column, rule."""

    def cell_key(cell: str) -> tuple[int, str]:
        letters = "".join(ch for ch in cell if ch.isalpha())
        digits = "".join(ch for ch in cell if ch.isdigit())
        return (int(digits) if digits else 0, f"{len(letters):02d}{letters}")

    return sorted(
        findings,
        key=lambda f: (f.file, f.sheet, cell_key(f.cell), f.rule, f.employee_id, f.message_en),
    )


__all__ = ["ERROR", "WARNING", "RULES", "Finding", "finding", "has_errors", "sort_findings"]


class BilingualError(Exception):
    """A problem told to the person at the terminal, in Chinese and English (never a traceback)."""

    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh, self.en = zh, en

    def message(self, lang: str = "zh") -> str:
        """English alone with `en`; otherwise Chinese first with English on the next line."""
        return say(self.zh, self.en, lang, "\n")
