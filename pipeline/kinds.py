"""The template kinds: the one description of every input workbook.

Each kind below drives template generation (`templates.py`), header matching and value
parsing (`reader.py`), the pandera schemas (`schemas.py`) and the column names in messages.
Nothing else in the project restates a column list.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

TEMPLATE_VERSION = "1"

# Field types. `id` and `text` are strings; `number` is a float (`60%` → 0.6);
# `weight` is a share (60, `60%`, 0.6 all mean 0.6); `period` is a normalised period string;
# `choice` is one of the field's choices, stored by its code.
ID, TEXT, NUMBER, WEIGHT, PERIOD, CHOICE = "id", "text", "number", "weight", "period", "choice"


@dataclass(frozen=True)
class Choice:
    code: str
    zh: str
    en: str

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


@dataclass(frozen=True)
class Field:
    name: str
    zh: str
    en: str
    type: str = TEXT
    required: bool = False
    choices: tuple[Choice, ...] = ()
    default: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    help_zh: str = ""
    help_en: str = ""
    example: object = None
    width: int = 14
    # Everyday headers HR writes for this column instead of the template's (工号 for 员工编号).
    synonyms: tuple[str, ...] = ()

    @property
    def header(self) -> str:
        """The bilingual header a generated template shows."""
        return f"{self.zh}\n{self.en}"

    @property
    def label(self) -> str:
        """How messages name the column: `员工编号 Employee ID`."""
        return f"{self.zh} {self.en}"

    def choice_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.choices)

    def choice_by_code(self, code: str) -> Choice | None:
        return next((c for c in self.choices if c.code == code), None)


@dataclass(frozen=True)
class SheetSpec:
    """One sheet of a template. `key` fields identify a row (duplicates are errors)."""

    zh: str
    en: str
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()
    matrix: bool = False  # AHP-<role family> sheets are matrices, not tables
    prefix: str = ""  # sheets recognised by name prefix (AHP-)

    @property
    def name(self) -> str:
        return f"{self.zh} {self.en}"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def after_prefix(self, sheet_name: str) -> str | None:
        """What a sheet named by this prefix names (`AHP-销售` → `销售`), or None for any other sheet.

        Case-insensitive, after NFKC, so a full-width `ＡＨＰ－销售` typed on a Chinese keyboard counts.
        """
        if not self.prefix:
            return None
        name = unicodedata.normalize("NFKC", sheet_name).strip()
        if name[:len(self.prefix)].casefold() != self.prefix.casefold():
            return None
        return name[len(self.prefix):].strip()

    @property
    def required(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.required)


@dataclass(frozen=True)
class Kind:
    name: str
    zh: str
    en: str
    sheets: tuple[SheetSpec, ...]
    instructions_zh: tuple[str, ...] = ()
    instructions_en: tuple[str, ...] = ()
    optional_sheets: tuple[str, ...] = field(default=())  # sheet names that may be absent

    @property
    def filename(self) -> str:
        return f"{self.name}.xlsx"

    def sheet(self, name: str) -> SheetSpec:
        for s in self.sheets:
            if s.name == name or s.en == name or s.zh == name:
                return s
        raise KeyError(name)

    @property
    def tables(self) -> tuple[SheetSpec, ...]:
        return tuple(s for s in self.sheets if not s.matrix)


# ---------------------------------------------------------------------------- shared fields

def _employee_id(required: bool = True) -> Field:
    return Field("employee_id", "员工编号", "Employee ID", ID, required,
                 help_zh="花名册中的员工编号,如 E001", help_en="Employee ID from the roster, e.g. E001",
                 example="示例E000", width=12,
                 synonyms=("工号", "职工编号", "员工号", "员工工号", "人员编号", "职工号", "Staff ID", "EmpID"))


def _indicator_id(example: str = "KPI-01", *, loose: bool = True) -> Field:
    """`loose`: a bare 指标 header also names the ID (not in the indicator library, where it
    could as well be the name)."""
    synonyms = ("指标代码", "指标 ID", "KPI编号", "KPI编码", "KPI ID", "KPI") + (("指标",) if loose else ())
    return Field("indicator_id", "指标编号", "Indicator ID", ID, True,
                 help_zh="指标库中的指标编号", help_en="Indicator ID from the indicator library",
                 example=example, width=12, synonyms=synonyms)


def _period(example: str = "2026-10") -> Field:
    return Field("period", "考核周期", "Period", PERIOD, True,
                 help_zh="月 2026-10、季 2026-Q3、半年 2026-H1 或年 2026",
                 help_en="Month 2026-10, quarter 2026-Q3, half 2026-H1 or year 2026",
                 example=example, width=11,
                 synonyms=("月份", "考核月份", "考核期间", "考核期", "期间", "周期", "月度", "考核月", "Month"))


def _role_family(required: bool = True) -> Field:
    return Field("role_family", "岗位类别", "Role family", TEXT, required,
                 help_zh="如 销售、研发、行政、生产", help_en="e.g. 销售 sales, 研发 R&D, 行政 admin",
                 example="销售", width=11, synonyms=("岗位族", "职位类别", "岗位类型", "职类", "职族"))


def _number(name: str, zh: str, en: str, help_zh: str, help_en: str, example: object = None,
            required: bool = False, width: int = 11, synonyms: tuple[str, ...] = ()) -> Field:
    return Field(name, zh, en, NUMBER, required, help_zh=help_zh, help_en=help_en,
                 example=example, width=width, synonyms=synonyms)


# Behaviour anchors (BARS) of a rating indicator: what a rater sees at each level.
ANCHOR_LEVELS = (1, 2, 3, 4, 5)
_ANCHOR_EXAMPLES = {1: ("经常拖延任务,需反复催促", "often late, needs chasing"),
                    3: ("按时完成任务,无重大失误", "on time, no major mistakes"),
                    5: ("主动超额完成任务,承担额外责任", "does more than asked, takes on extra duties")}


def anchor_field(level: int) -> str:
    """The indicator-library column of level `level`'s behaviour anchor."""
    return f"anchor_{level}"


def _anchor(level: int) -> Field:
    example = _ANCHOR_EXAMPLES.get(level)
    hint_zh = f",如“{example[0]}”" if example else ""
    hint_en = f", e.g. \"{example[1]}\"" if example else ""
    return Field(anchor_field(level), f"{level}分描述", f"Level {level} anchor", TEXT,
                 help_zh=f"评分类指标:评 {level} 分的行为表现(可选){hint_zh}",
                 help_en=f"Rating indicators: the behaviour rated {level} (optional){hint_en}",
                 example="", width=22,
                 synonyms=(f"{level}分", f"{level} 分", f"{level}分标准", f"{level}分行为描述", f"{level}分行为",
                           f"Level {level}", f"Anchor {level}"))


_DATA_SOURCE = Field("data_source", "数据来源", "Data source", TEXT,
                     help_zh="数据出自哪个系统或部门", help_en="Which system or team the data comes from",
                     example="CRM", width=14)

# ---------------------------------------------------------------------------- choices

STATUS = (Choice("active", "在职", "active"), Choice("left", "离职", "left"))
DIMENSIONS = (
    Choice("performance", "业绩", "performance"),
    Choice("ability", "能力", "ability"),
    Choice("attitude", "态度", "attitude"),
)
CATEGORIES = (
    Choice("result", "结果", "result"),
    Choice("process", "过程", "process"),
    Choice("development", "发展", "development"),
)
DIRECTIONS = (Choice("higher", "越高越好", "higher"), Choice("lower", "越低越好", "lower"))
METHODS = (
    Choice("ratio", "比率", "ratio"),
    Choice("tiered", "阶梯", "tiered"),
    Choice("pass_fail", "达标", "pass_fail"),
    Choice("rating", "评分", "rating"),
)
AGGREGATIONS = (
    Choice("sum", "求和", "sum"),
    Choice("mean", "平均", "mean"),
    Choice("last", "期末", "last"),
)
RELATIONS = (
    Choice("supervisor", "上级", "supervisor"),
    Choice("peer", "同事", "peer"),
    Choice("self", "自评", "self"),
    Choice("subordinate", "下属", "subordinate"),
    Choice("customer", "客户", "customer"),
)

# ---------------------------------------------------------------------------- kinds

ROSTER = Kind(
    "roster", "员工花名册", "Roster",
    (SheetSpec("员工花名册", "Roster", (
        _employee_id(),
        Field("name", "姓名", "Name", TEXT, True, help_zh="员工姓名", help_en="Full name",
              example="张三", width=10, synonyms=("员工姓名", "职工姓名")),
        Field("department", "部门", "Department", TEXT, True, help_zh="所属部门,决定计分卡工作簿",
              help_en="Department; one scorecard workbook per department", example="销售部",
              synonyms=("所属部门", "部门名称")),
        Field("position", "岗位", "Position", TEXT, help_zh="岗位名称", help_en="Job title",
              example="销售代表", synonyms=("职位", "岗位名称", "职务")),
        _role_family(),
        Field("manager_id", "直属上级编号", "Manager ID", ID,
              help_zh="直属上级的员工编号,须在花名册中", help_en="Employee ID of the line manager",
              example="E001", width=12, synonyms=("上级编号", "上级工号", "直属上级工号", "直接上级编号")),
        Field("status", "状态", "Status", CHOICE, choices=STATUS, default="active",
              help_zh="在职或离职;留空视为在职", help_en="active or left; blank means active",
              example="在职", width=9),
    ), key=("employee_id",)),),
    ("每行一名员工。员工编号必须唯一。", "直属上级编号必须是花名册中的员工。",
     "岗位类别决定适用的岗位指标(岗位指标表)。"),
    ("One row per employee. Employee IDs must be unique.",
     "Manager ID must be an employee in the roster.",
     "Role family selects the role KPIs (RoleKPIs sheet) that apply."),
)

INDICATORS = Kind(
    "indicators", "指标库", "Indicators",
    (SheetSpec("指标库", "Indicators", (
        _indicator_id(loose=False),
        Field("name", "指标名称", "Indicator name", TEXT, True, help_zh="如 销售额", help_en="e.g. Sales revenue",
              example="销售额", width=16),
        Field("dimension", "维度", "Dimension", CHOICE, True, choices=DIMENSIONS,
              help_zh="业绩、能力或态度", help_en="performance, ability or attitude", example="业绩", width=10),
        Field("category", "指标类型", "Category", CHOICE, choices=CATEGORIES,
              help_zh="结果、过程或发展", help_en="result, process or development", example="结果", width=10),
        Field("direction", "方向", "Direction", CHOICE, True, choices=DIRECTIONS,
              help_zh="越高越好(如销售额)或越低越好(如投诉率)",
              help_en="higher is better (sales) or lower is better (complaint rate)",
              example="越高越好", width=11),
        Field("method", "计分方式", "Scoring method", CHOICE, True, choices=METHODS,
              help_zh="比率:实际/目标;阶梯:基础-目标-冲刺;达标:达到为 1;评分:360 行为评分",
              help_en="ratio: actual/target; tiered: base-target-stretch; pass_fail; rating: 360 ratings",
              example="比率", width=11, synonyms=("计分方法", "评分方式", "考核方式")),
        Field("unit", "单位", "Unit", TEXT, help_zh="如 万元、个、%", help_en="e.g. 10k CNY, count, %",
              example="万元", width=8, synonyms=("计量单位",)),
        Field("aggregation", "汇总方式", "Aggregation", CHOICE, choices=AGGREGATIONS, default="sum",
              help_zh="月度实际值汇总为季/年的方式:求和、平均或期末;留空为求和",
              help_en="How monthly actuals roll up to a quarter or year: sum, mean or last; blank = sum",
              example="求和", width=10),
        Field("definition", "计算方式", "Definition", TEXT, help_zh="指标如何计算",
              help_en="How the indicator is computed", example="当期回款口径销售额", width=24),
        _DATA_SOURCE,
        *(_anchor(level) for level in ANCHOR_LEVELS),
    ), key=("indicator_id",)),),
    ("每行一个指标。指标编号必须唯一。", "计分方式为“评分”的指标由行为评分(360)计算,不需要实际值。",
     "越低越好的比率指标按 目标/实际 计分(可在政策中改为线性)。",
     "评分类指标可填写 1–5 分的行为描述(可只填 1、3、5 分):评分模板列出它们供评价人对照,"
     "计分卡显示员工评分最接近的那一级描述。"),
    ("One row per indicator. Indicator IDs must be unique.",
     "Indicators scored by rating come from 360 ratings and need no actuals.",
     "Lower-is-better ratio indicators score target/actual (the policy can switch to linear).",
     "Rating indicators may describe the behaviour of each level 1–5 (1, 3 and 5 alone will do): "
     "the ratings template lists them for the raters, and the scorecard shows the level closest to "
     "the employee's rating."),
)

_AGREEMENT_VALUES = (
    Field("weight", "权重", "Weight", WEIGHT, True, minimum=0, maximum=1,
          help_zh="填 60、60% 或 0.6 均表示 60%;同一员工同一周期合计 100%",
          help_en="60, 60% and 0.6 all mean 60%; one employee's weights for a period sum to 100%",
          example=0.6, width=9, synonyms=("比重", "权重(%)", "权重%", "占比")),
    _number("base", "基础值", "Base", "阶梯计分的最低线(低于此为 0 分)",
            "Tiered: the floor (worse than this scores 0)", 150, synonyms=("基础目标", "保底值", "底线值", "门槛值")),
    _number("target", "目标值", "Target", "达到即为 100%", "Reaching it scores 100%", 200,
            synonyms=("目标", "目标值(考核)", "考核目标")),
    _number("stretch", "冲刺值", "Stretch", "阶梯计分的冲刺线(达到即为最高分)",
            "Tiered: the stretch level (reaching it scores the maximum)", 240,
            synonyms=("挑战值", "挑战目标", "冲刺目标")),
)

# What an adjustment may change in an agreement row.
ADJUSTED_FIELDS = (
    Choice("target", "目标值", "target"),
    Choice("base", "基础值", "base"),
    Choice("stretch", "冲刺值", "stretch"),
    Choice("weight", "权重", "weight"),
)

# A change to an agreed value during the year, kept with who approved it and why (seed 000:
# "记录在案作为后续参考"). No key: a second adjustment of the same indicator is allowed (a warning
# within one quarter), and the rows are applied in effective-month order.
ADJUSTMENTS = SheetSpec("调整记录", "Adjustments", (
    _employee_id(required=False),
    _role_family(required=False),
    _indicator_id(),
    Field("field", "调整项", "Field", CHOICE, True, choices=ADJUSTED_FIELDS,
          help_zh="调整哪一项:目标值、基础值、冲刺值或权重", help_en="What changes: target, base, stretch or weight",
          example="目标值", width=10, synonyms=("调整字段", "调整内容")),
    _number("old_value", "原值", "Old value", "协议中的原值,须与协议一致(权重可写 30、30% 或 0.3)",
            "The agreement's value before the change; must match it (weights: 30, 30% or 0.3)", 200,
            required=True, synonyms=("调整前", "原目标")),
    _number("new_value", "新值", "New value", "调整后的值", "The value from the effective period on", 180,
            required=True, synonyms=("调整后", "新目标")),
    Field("effective_period", "生效周期", "Effective period", PERIOD, True,
          help_zh="从哪个月起生效,如 2026-08(季度写 2026-Q3 即从其第一个月起)",
          help_en="The month it applies from, e.g. 2026-08 (a quarter means its first month)",
          example="2026-08", width=11, synonyms=("生效月份", "生效期间", "生效月")),
    Field("reason", "调整原因", "Reason", TEXT,
          help_zh="为什么调整(必填,记录在案)", help_en="Why the value changes (required, kept on record)",
          example="市场变化,区域重新划分", width=24, synonyms=("原因", "调整说明")),
    Field("approved_by", "审批人", "Approved by", TEXT,
          help_zh="批准调整的人(必填)", help_en="Who approved the change (required)",
          example="HR 张经理", width=12, synonyms=("批准人", "审批")),
    Field("date", "调整日期", "Date", TEXT, help_zh="批准日期,如 2026-08-05", help_en="Date approved, e.g. 2026-08-05",
          example="2026-08-05", width=12, synonyms=("日期", "审批日期")),
))

AGREEMENTS = Kind(
    "agreements", "绩效协议", "Agreements",
    (
        SheetSpec("岗位指标", "RoleKPIs",
                  (_role_family(), _period(), _indicator_id(), *_AGREEMENT_VALUES),
                  key=("role_family", "period", "indicator_id")),
        SheetSpec("个人指标", "EmployeeKPIs",
                  (_employee_id(), _period(), _indicator_id(), *_AGREEMENT_VALUES),
                  key=("employee_id", "period", "indicator_id")),
        ADJUSTMENTS,
    ),
    ("岗位指标:同一岗位类别的员工共用的指标、权重和目标。",
     "个人指标:某员工在某周期只要有个人指标,就只用他的个人指标,不再用岗位指标。",
     "权重可写 60、60% 或 0.6;每人每周期合计必须为 100%。",
     "阶梯计分需填写基础值、目标值、冲刺值(越高越好时依次递增,越低越好时依次递减)。",
     "调整记录:期中调整目标值、基础值、冲刺值或权重时,每项调整一行(员工编号或岗位类别二选一),"
     "原值须与协议一致,并写明原因和审批人;从生效月份所在的考核周期起按新值计分。"),
    ("RoleKPIs: indicators, weights and targets shared by a role family.",
     "EmployeeKPIs: an employee with any rows here for a period uses exactly those rows.",
     "Weights may be 60, 60% or 0.6; each employee's weights for a period must sum to 100%.",
     "Tiered indicators need base, target and stretch (increasing when higher is better, "
     "decreasing when lower is better).",
     "Adjustments: one row per changed target, base, stretch or weight during the year (employee ID or "
     "role family), with the old value as agreed, the reason and the approver; scoring uses the new value "
     "from the period holding the effective month on."),
    optional_sheets=("岗位指标 RoleKPIs", "个人指标 EmployeeKPIs", "调整记录 Adjustments"),
)

ACTUALS = Kind(
    "actuals", "实际值", "Actuals",
    (SheetSpec("实际值", "Actuals", (
        _employee_id(), _period(), _indicator_id(),
        _number("actual", "实际值", "Actual", "本期实际完成值,百分比可写 1.5%",
                "The period's actual; percentages may be typed as 1.5%", 210, required=True,
                synonyms=("完成值", "实际完成", "实际完成值", "完成数", "完成额", "实绩", "实际")),
        _DATA_SOURCE,
        Field("note", "备注", "Note", TEXT, help_zh="说明", help_en="Remarks", example="", width=20),
    ), key=("employee_id", "period", "indicator_id")),),
    ("每行一名员工一个周期一个指标的实际值。", "可以分成多个文件(如每个部门一个);同一员工同一周期同一指标只能出现一次。",
     "季度/半年/年度考核时,月度实际值按指标的汇总方式自动汇总。"),
    ("One row per employee, period and indicator.",
     "Actuals may come in several files (one per department); each (employee, period, "
     "indicator) may appear only once.",
     "For quarters, halves and years, monthly actuals roll up by the indicator's aggregation."),
)

RATINGS = Kind(
    "ratings", "行为评分", "Ratings",
    (SheetSpec("行为评分", "Ratings", (
        _employee_id(), _period(), _indicator_id("ATT-01"),
        Field("rater_id", "评价人编号", "Rater ID", ID, True, help_zh="评价人的员工编号或客户编号",
              help_en="Rater's employee ID (or a customer reference)", example="E001", width=12,
              synonyms=("评价人工号", "评分人编号", "评分人工号", "评价人", "评分人")),
        Field("relation", "评价关系", "Relation", CHOICE, True, choices=RELATIONS,
              help_zh="上级、同事、自评、下属或客户", help_en="supervisor, peer, self, subordinate or customer",
              example="上级", width=10, synonyms=("关系", "评价人关系", "评分关系")),
        Field("score", "分数", "Score", NUMBER, True, minimum=1, maximum=5,
              help_zh="1–5 分,可以是半分(如 3.5)", help_en="1 to 5, halves allowed (e.g. 3.5)",
              example=4, width=8, synonyms=("评分", "得分", "分值")),
        Field("comment", "评语", "Comment", TEXT, help_zh="具体事例", help_en="Concrete examples",
              example="", width=24, synonyms=("评价", "评价意见")),
    ), key=("employee_id", "period", "indicator_id", "rater_id")),),
    ("每行一位评价人对一名员工一个评分类指标的打分(1–5 分,可半分)。",
     "评价关系决定权重(见政策 rater_weights)。"),
    ("One row per rater, employee and rating indicator (1 to 5, halves allowed).",
     "The relation sets the rater's weight (policy rater_weights)."),
)

# One AHP-<role family> sheet per role family: the prefix names the role family.
AHP_SHEETS = SheetSpec("AHP", "", (), matrix=True, prefix="AHP-")

WEIGHTS = Kind(
    "weights", "指标权重", "Weights",
    (
        SheetSpec("专家打分", "ExpertScores", (
            _role_family(),
            Field("expert_id", "专家编号", "Expert ID", ID, True, help_zh="打分专家的编号",
                  help_en="ID of the scoring expert", example="X1", width=10),
            _indicator_id(),
            Field("score", "重要性分数", "Importance score", NUMBER, True, minimum=1, maximum=10,
                  help_zh="1–10 分,越重要分越高", help_en="1 to 10, higher is more important",
                  example=8, width=10),
        ), key=("role_family", "expert_id", "indicator_id")),
        AHP_SHEETS,
    ),
    ("专家打分:每位专家对每个指标的重要性打 1–10 分,按岗位类别求平均并归一化为权重。",
     "层次分析法:每个岗位类别一张名为 AHP-<岗位类别> 的工作表,首行和首列为指标编号,"
     "填写两两比较的判断值(1–9 标度,如 3、1/3)。"),
    ("ExpertScores: each expert scores each indicator's importance 1 to 10; the mean per role "
     "family, normalised, gives the weights.",
     "AHP: one sheet named AHP-<role family> per role family, indicator IDs across the first row "
     "and down the first column, Saaty 1–9 judgments such as 3 or 1/3."),
    optional_sheets=("专家打分 ExpertScores", "AHP "),
)

DEPT_TARGETS = Kind(
    "dept_targets", "部门目标", "DepartmentTargets",
    (SheetSpec("部门目标", "DepartmentTargets", (
        Field("department", "部门", "Department", TEXT, True, help_zh="花名册中的部门",
              help_en="Department as in the roster", example="销售部"),
        _period("2026-Q4"), _indicator_id(),
        _number("target", "目标值", "Target", "部门目标值", "The department's target", 3000, required=True),
    ), key=("department", "period", "indicator_id")),),
    ("部门目标用于检查目标分解(个人目标之和是否覆盖部门目标)和部门汇总。",),
    ("Department targets drive the cascade check (do individual targets add up to the "
     "department's?) and the department rollup.",),
)

KINDS: dict[str, Kind] = {k.name: k for k in (ROSTER, INDICATORS, AGREEMENTS, ACTUALS, RATINGS,
                                                WEIGHTS, DEPT_TARGETS)}


def fold(text: object) -> str:
    """The form headers and choices are compared in: NFKC, trimmed, case-folded, one space."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    for mark in ("*", "(", ")", "(", ")", ":"):
        folded = folded.replace(mark, " ")
    return " ".join(folded.split())


def header_aliases(f: Field) -> set[str]:
    """Every header text that names this field."""
    zh, en, name = fold(f.zh), fold(f.en), fold(f.name)
    return {zh, en, name, fold(f"{f.zh} {f.en}"), fold(f"{f.en} {f.zh}"), zh.replace(" ", ""),
            fold(f.name.replace("_", " ")), *(fold(s) for s in f.synonyms)}


def choice_aliases(f: Field) -> dict[str, str]:
    """Every way HR may write a choice (Chinese, English, code, both) → its code."""
    aliases: dict[str, str] = {}
    for c in f.choices:
        for text in (c.code, c.zh, c.en, f"{c.zh} {c.en}", f"{c.zh}{c.en}", c.code.replace("_", " ")):
            aliases[fold(text)] = c.code
    return aliases
