"""The scoring policy: defaults in `default_policy.yaml` (the one place), overrides from a file.

A policy error names the key and what is expected, in both languages, before anything runs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import cast

import yaml

from pipeline.kinds import DIMENSIONS, RELATIONS
from pipeline.safety import Limits
from pipeline.texts import say

MONEY_UNITS = ("元", "万元")  # display.money_unit
DEFAULT_POLICY_TEXT = resources.files("pipeline").joinpath("default_policy.yaml").read_text("utf-8")


class PolicyError(Exception):
    def __init__(self, key: str, zh: str, en: str):
        super().__init__(f"{key}: {en}")
        self.key, self.zh, self.en = key, zh, en

    def message(self, lang: str = "zh") -> str:
        """English alone with `en`; otherwise Chinese first with English on the next line."""
        return say(f"政策配置错误 {self.key}:{self.zh}", f"Policy error at {self.key}: {self.en}", lang, "\n")


@dataclass(frozen=True)
class Grade:
    grade: str
    min: float
    bonus: float


@dataclass(frozen=True)
class ForcedDistribution:
    """Grade quotas per group: at most half_up(cumulative share × n) people hold the top grades.

    `cap` keeps each score's grade and moves the excess down; `rank` grades by rank alone.
    Departments under `min_group` scored people are pooled into one company-wide group (the
    short form `{S: 0.1, ...}` is `rank` with `min_group` 1: every department on its own).
    """

    shares: dict[str, float]
    mode: str = "cap"
    group: str = "department"
    min_group: int = 10


FORCED_MODES = ("cap", "rank")
FORCED_GROUPS = ("department", "company")


@dataclass(frozen=True)
class Policy:
    cap: float
    floor: float
    lower_is_better: str
    base_score: float
    stretch_score: float
    scale_max: float
    rater_weights: dict[str, dict[str, float]]
    dimension_weights: dict[str, dict[str, float]]
    grades: tuple[Grade, ...]
    forced_distribution: ForcedDistribution | None
    decimals: int
    missing_months: str
    confidential: str
    max_sheets: int
    weight_sum_tolerance: float
    indicators_min: int
    indicators_max: int
    performance_weight_min: float
    too_easy: float
    too_hard: float
    scale_ratio: float  # actual/target (or the inverse) beyond this: a unit slip warning
    ri_table_name: str
    ri_table: dict[int, float]
    limits: Limits
    keep_runs: int = 10  # archived runs of a period kept in OUT/.history (pipeline.runs)
    money_unit: str = "元"  # 万元: money in yuan is shown in 10k yuan on scorecards and the summary
    # Streak lists of summary.xlsx: kind (promotion, improvement) -> (grades, periods in a row).
    streaks: dict[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    pace_band: float = 0.05  # progress runs: achievement to date within 100% ± this is on track
    per_employee: bool = False  # also one workbook per employee (pipeline.distribution)
    split_by: str = "department"  # department or manager workbooks
    text: str = field(repr=False, default="")
    # Scorecard sheets locked against slips (not security): formulas and inputs locked, the
    # review section open for typing; an empty password lets anyone lift the lock in one click.
    protect_sheets: bool = True
    protect_password: str = field(repr=False, default="")
    # The effective settings (defaults merged with the file) as plain JSON values: what the
    # audit manifest records, so an auditor sees what was in force, not only what was changed.
    settings: dict = field(repr=False, default_factory=dict, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def rater_weights_for(self, role_family: str) -> dict[str, float]:
        return self.rater_weights.get(role_family, self.rater_weights.get("default", {}))


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key written twice in one mapping (YAML would keep the last)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable key: let YAML report it
            continue
        if duplicate:
            line = key_node.start_mark.line + 1
            raise PolicyError(str(key), f"在第 {line} 行再次出现;同一项只能写一次",
                              f"appears a second time at line {line}; write each key once")
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)

# Sections whose keys are the user's own (role families), merged family by family.
_FREE_FORM = ("rater_weights", "dimension_weights")


def _merge(base: dict, override: dict, path: str = "") -> dict:
    """`override` over `base`, key by key; a key the defaults do not have is an error at any depth."""
    merged = dict(base)
    for key, value in (override or {}).items():
        where = f"{path}{key}"
        if key not in base:
            known = ", ".join(str(k) for k in base)
            raise PolicyError(where, f"未知的配置项(可选:{known})", f"unknown key (known keys: {known})")
        current = base[key]
        if not isinstance(current, dict):
            merged[key] = value
        elif value is None:
            continue  # a section left empty (children commented out) keeps its defaults
        elif not isinstance(value, dict):
            raise PolicyError(where, f"应为映射(键: 值),现为 {value!r}", f"must be a mapping (key: value), got {value!r}")
        elif path == "" and key in _FREE_FORM:
            merged[key] = {**current, **value}
        else:
            merged[key] = _merge(current, value, f"{where}.")
    return merged


def _number(data: dict, key: str, path: str, low: float | None = None, high: float | None = None) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{path}.{key}", f"应为数字,现为 {value!r}", f"must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            raise PolicyError(f"{path}.{key}", f"应不小于 {low},现为 {value}", f"must be at least {low}, got {value}")
        if low is None:
            raise PolicyError(f"{path}.{key}", f"应不大于 {high},现为 {value}", f"must be at most {high}, got {value}")
        raise PolicyError(f"{path}.{key}", f"应在 {low}–{high} 之间,现为 {value}",
                          f"must be between {low} and {high}, got {value}")
    return float(value)


def _shares(data: object, path: str, allowed: set[str]) -> dict[str, dict[str, float]]:
    if not isinstance(data, dict):
        raise PolicyError(path, "应为 岗位类别 → {关系: 权重} 的映射", "must map role family to {name: weight}")
    result = {}
    for family, weights in data.items():
        if not isinstance(weights, dict) or not weights:
            raise PolicyError(f"{path}.{family}", "应为 {名称: 权重} 的映射", "must map names to weights")
        for name in weights:
            if name not in allowed:
                raise PolicyError(f"{path}.{family}.{name}", f"未知名称,可选 {sorted(allowed)}",
                                  f"unknown name; choose from {sorted(allowed)}")
            _number(weights, name, f"{path}.{family}", 0, 1)
        result[str(family)] = {str(k): float(v) for k, v in weights.items()}
    return result


def _boolean(data: dict, key: str, path: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise PolicyError(f"{path}.{key}", f"应为 true 或 false,现为 {value!r}", f"must be true or false, got {value!r}")
    return value


def _integer(data: dict, key: str, path: str, low: int) -> int:
    value = _number(data, key, path, low)
    if not value.is_integer():
        raise PolicyError(f"{path}.{key}", f"应为整数,现为 {data.get(key)!r}", f"must be a whole number, got {data.get(key)!r}")
    return int(value)


def _scale_ratio(checks: dict) -> float:
    """How far actual and target may differ (either way) before a unit slip is suspected."""
    value = _number(checks, "scale_ratio", "checks", 1)
    if value <= 1:
        raise PolicyError("checks.scale_ratio", f"应大于 1,现为 {value:g}", f"must be above 1, got {value:g}")
    return value


def parse_policy(text: str) -> Policy:
    """Validate a policy text merged over the defaults; raise PolicyError naming the key."""
    try:
        override = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise PolicyError("(file)", f"YAML 格式错误:{exc}", f"not valid YAML: {exc}") from None
    if not isinstance(override, dict):
        raise PolicyError("(file)", "顶层应为映射", "the top level must be a mapping")
    data = _merge(yaml.safe_load(DEFAULT_POLICY_TEXT), override)
    ach, tiered, rating = data["achievement"], data["tiered"], data["rating"]
    cap = _number(ach, "cap", "achievement", 0)
    floor = _number(ach, "floor", "achievement", 0)
    if floor > cap:
        raise PolicyError("achievement.floor", "不能大于 cap", "cannot exceed cap")
    if ach.get("lower_is_better") not in ("ratio", "linear"):
        raise PolicyError("achievement.lower_is_better", "应为 ratio 或 linear", "must be ratio or linear")
    # Tiered scores rise from base to target to stretch: base_score ≤ 1 ≤ stretch_score.
    base_score = _number(tiered, "base_score", "tiered", 0, 1)
    stretch_score = _number(tiered, "stretch_score", "tiered", 1)
    relations = {c.code for c in RELATIONS}
    grades_raw = data["grades"]
    if not isinstance(grades_raw, list) or not grades_raw:
        raise PolicyError("grades", "应为等级列表", "must be a list of grades")
    grades: list[Grade] = []
    for i, g in enumerate(grades_raw):
        if not isinstance(g, dict) or "grade" not in g:
            raise PolicyError(f"grades[{i}]", "每项需 grade、min、bonus", "each needs grade, min, bonus")
        unknown = set(g) - {"grade", "min", "bonus"}
        if unknown:
            raise PolicyError(f"grades[{i}].{sorted(map(str, unknown))[0]}", "未知的配置项(可选:grade、min、bonus)",
                              "unknown key (known keys: grade, min, bonus)")
        grade = Grade(str(g["grade"]), _number(g, "min", f"grades[{i}]"), _number(g, "bonus", f"grades[{i}]", 0))
        if any(grade.grade == other.grade for other in grades):
            raise PolicyError(f"grades[{i}].grade", f"等级 {grade.grade} 重复", f"grade {grade.grade} appears twice")
        if grades and grade.min >= grades[-1].min:
            raise PolicyError(f"grades[{i}].min", f"min 须从高到低排列,{grade.min} 不低于上一等级的 {grades[-1].min}",
                              f"min must decrease from first to last; {grade.min} is not below the previous "
                              f"grade's {grades[-1].min}")
        grades.append(grade)
    forced = _forced_distribution(data.get("forced_distribution"), grades)
    rounding = data["rounding"]
    if rounding.get("mode") != "half_up":
        raise PolicyError("rounding.mode", "只支持 half_up(四舍五入)", "only half_up is supported")
    decimals = rounding.get("decimals")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise PolicyError("rounding.decimals", "应为 0–6 的整数", "must be an integer 0-6")
    missing_months = data["rollup"].get("missing_months")
    if missing_months not in ("warn", "error"):
        raise PolicyError("rollup.missing_months", f"应为 warn 或 error,现为 {missing_months!r}",
                          f"must be warn or error, got {missing_months!r}")
    confidential = data["display"].get("confidential")
    if confidential is None:
        confidential = ""
    if not isinstance(confidential, str) or len(confidential) > 60:
        raise PolicyError("display.confidential", "应为不超过 60 个字符的文本", "must be text of at most 60 characters")
    money_unit = data["display"].get("money_unit")
    if money_unit not in MONEY_UNITS:
        raise PolicyError("display.money_unit", f"应为 元 或 万元,现为 {money_unit!r}",
                          f"must be 元 (yuan) or 万元 (10k yuan), got {money_unit!r}")
    checks = data["checks"]
    per_employee = checks["indicators_per_employee"]
    calibration = checks["calibration"]
    indicators_min = _integer(per_employee, "min", "checks.indicators_per_employee", 0)
    indicators_max = _integer(per_employee, "max", "checks.indicators_per_employee", 1)
    if indicators_min > indicators_max:
        raise PolicyError("checks.indicators_per_employee.min", f"不能大于 max({indicators_max})",
                          f"cannot exceed max ({indicators_max})")
    too_easy = _number(calibration, "too_easy", "checks.calibration", 0, 1)
    too_hard = _number(calibration, "too_hard", "checks.calibration", 0, 1)
    if too_hard >= too_easy:
        raise PolicyError("checks.calibration.too_hard", f"应小于 too_easy({too_easy})",
                          f"must be below too_easy ({too_easy})")
    ri_list = data["ahp"]["ri_table"]
    if not isinstance(ri_list, list) or not ri_list or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in ri_list):
        raise PolicyError("ahp.ri_table", "应为数字列表(n = 1, 2, …)", "must be a list of numbers (n = 1, 2, ...)")
    limits_raw = data["limits"]
    mb = 1024 * 1024
    limits = Limits(
        max_file_bytes=int(_number(limits_raw, "max_file_mb", "limits", 1) * mb),
        max_uncompressed_bytes=int(_number(limits_raw, "max_uncompressed_mb", "limits", 1) * mb),
        min_compression_ratio=_number(limits_raw, "min_compression_ratio", "limits", 0, 1),
        max_sheet_bytes=int(_number(limits_raw, "max_sheet_mb", "limits", 1) * mb),
        max_sheets=int(_number(limits_raw, "max_sheets", "limits", 1)),
        max_rows=int(_number(limits_raw, "max_rows", "limits", 10)),
        max_columns=int(_number(limits_raw, "max_columns", "limits", 5)),
        max_cells=int(_number(limits_raw, "max_cells", "limits", 100)),
    )
    max_sheets = data["output"].get("max_sheets")
    if isinstance(max_sheets, bool) or not isinstance(max_sheets, int) or max_sheets < 1:
        raise PolicyError("output.max_sheets", "应为正整数", "must be a positive integer")
    keep_runs = data["output"].get("keep_runs")
    if isinstance(keep_runs, bool) or not isinstance(keep_runs, int) or keep_runs < 0:
        raise PolicyError("output.keep_runs", f"应为 0 或正整数(保留的历史运行次数),现为 {keep_runs!r}",
                          f"must be 0 or a positive whole number (archived runs kept), got {keep_runs!r}")
    tracking = data.get("tracking")
    if not isinstance(tracking, dict):
        raise PolicyError("tracking", "应为映射,如 {pace_band: 0.05}", "must be a mapping such as {pace_band: 0.05}")
    pace_band = _number(tracking, "pace_band", "tracking", 0, 1)
    protect_sheets, protect_password = _protection(data["output"])
    per_employee_files, split_by = _distribution(data["output"])
    rater_weights = _shares(data["rater_weights"], "rater_weights", relations)
    for family, weights in rater_weights.items():
        if sum(weights.values()) <= 0:
            raise PolicyError(f"rater_weights.{family}", "至少一种评价关系的权重应大于 0",
                              "at least one relation needs a weight above 0")
    dimension_weights = _shares(data["dimension_weights"], "dimension_weights", {c.code for c in DIMENSIONS})
    for family, shares in dimension_weights.items():
        if sum(shares.values()) > 1 + 1e-6:
            raise PolicyError(f"dimension_weights.{family}", f"各维度比例之和不能超过 1(现为 {sum(shares.values()):g})",
                              f"the shares cannot sum to more than 1 (got {sum(shares.values()):g})")
    return Policy(
        cap=cap, floor=floor, lower_is_better=ach["lower_is_better"],
        base_score=base_score, stretch_score=stretch_score,
        scale_max=_number(rating, "scale_max", "rating", 1),
        rater_weights=rater_weights, dimension_weights=dimension_weights,
        grades=tuple(grades), forced_distribution=forced, decimals=decimals, max_sheets=max_sheets,
        missing_months=missing_months, confidential=confidential, money_unit=money_unit,
        weight_sum_tolerance=_number(checks, "weight_sum_tolerance", "checks", 0, 0.5),
        indicators_min=indicators_min, indicators_max=indicators_max,
        performance_weight_min=_number(checks, "performance_weight_min", "checks", 0, 1),
        too_easy=too_easy, too_hard=too_hard,
        scale_ratio=_scale_ratio(checks),
        ri_table_name=str(data["ahp"].get("ri_table_name", "")),
        ri_table={n: float(v) for n, v in enumerate(ri_list, start=1)},
        limits=limits, keep_runs=keep_runs, streaks=_streaks(data["streaks"], grades, override.get("streaks")),
        pace_band=pace_band, per_employee=per_employee_files, split_by=split_by, text=text,
        protect_sheets=protect_sheets, protect_password=protect_password, settings=cast(dict, canonical_settings(data)),
    )


STREAK_KINDS = ("promotion", "improvement")


def _streaks(raw: dict, grades: list[Grade], written: object) -> dict[str, tuple[tuple[str, ...], int]]:
    """Each streak list's grade set (grades of the policy) and the periods in a row it needs (0: off).

    A policy with grades of its own (优秀/合格/…) that does not name a list's grades gets the
    top (promotion) or bottom (improvement) two grades, one with fewer than five grades: the
    defaults' S/A and C/D would not exist there."""
    known = [g.grade for g in grades]
    streaks = {}
    for kind in STREAK_KINDS:
        path = f"streaks.{kind}"
        section = raw.get(kind)
        if not isinstance(section, dict):
            raise PolicyError(path, f"应为映射,如 {{grades: [S, A], periods: 4}},现为 {section!r}",
                              f"must be a mapping such as {{grades: [S, A], periods: 4}}, got {section!r}")
        chosen = section.get("grades")
        own = isinstance(written, dict) and isinstance(written.get(kind), dict) and "grades" in written[kind]
        if not own and isinstance(chosen, list) and not set(map(str, chosen)) <= set(known):
            ends = 2 if len(known) >= 5 else 1
            chosen = known[:ends] if kind == "promotion" else known[-ends:]
        if not isinstance(chosen, list) or not chosen:
            raise PolicyError(f"{path}.grades", f"应为等级列表,如 [S, A],现为 {chosen!r}",
                              f"must be a list of grades such as [S, A], got {chosen!r}")
        for grade in chosen:
            if str(grade) not in known:
                raise PolicyError(f"{path}.grades", f"{grade} 不是 grades 中的等级(可选:{'、'.join(known)})",
                                  f"{grade} is not a grade of the policy (grades: {', '.join(known)})")
        periods = _integer(section, "periods", path, 0)
        streaks[kind] = (tuple(str(g) for g in chosen), periods)
    return streaks


def _protection(output: dict) -> tuple[bool, str]:
    """`output.protect_sheets` (true/false) and `output.protect_password` (text, empty: none)."""
    protect = _boolean(output, "protect_sheets", "output")
    password = output.get("protect_password")
    if password is None:
        password = ""
    if not isinstance(password, str) or len(password) > 255:
        raise PolicyError("output.protect_password", "应为不超过 255 个字符的文本(留空则不设密码)",
                          "must be text of at most 255 characters (empty: no password)")
    return protect, password


def canonical_settings(value: object) -> object:
    """`value` as plain JSON values: mappings with text keys, lists, text, numbers, booleans and
    null; anything else (a date YAML recognised, a non-finite number) as its text, so the
    manifest always serialises the same way."""
    if isinstance(value, dict):
        return {str(key): canonical_settings(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_settings(item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


SPLITS = ("department", "manager")


def _distribution(output: dict) -> tuple[bool, str]:
    """output.per_employee (true/false) and output.split_by (department or manager)."""
    per_employee = _boolean(output, "per_employee", "output")
    split_by = output.get("split_by")
    if split_by not in SPLITS:
        raise PolicyError("output.split_by", f"应为 department(按部门)或 manager(按经理,含间接下属),现为 {split_by!r}",
                          f"must be department or manager (each manager's people, direct and indirect), "
                          f"got {split_by!r}")
    return per_employee, split_by


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path`, or the defaults when no file is given."""
    if path is None:
        return parse_policy(DEFAULT_POLICY_TEXT)
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), f"无法读取政策文件:{exc}", f"cannot read the policy file: {exc}") from None
    return parse_policy(text)


def _forced_distribution(raw: object, grades: list[Grade]) -> ForcedDistribution | None:
    """The long form `{shares: {...}, mode, group, min_group}`, or the short form `{S: 0.1, ...}`.

    The short form predates the long one and keeps its meaning (rank, every department on
    its own), so older policy files score exactly as before.
    """
    key = "forced_distribution"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PolicyError(key, "应为映射,如 {shares: {S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}, mode: cap},"
                               f"或 null(不强制分布),现为 {raw!r}",
                          "must be a mapping such as {shares: {S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}, "
                          f"mode: cap}}, or null (no forced distribution), got {raw!r}")
    options = {"shares", "mode", "group", "min_group"}
    if "shares" not in raw:
        if options & {str(k) for k in raw}:
            raise PolicyError(f"{key}.shares", "缺少此项:请写出各等级的比例,如 {S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}",
                              "is missing: give each grade's share, e.g. {S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}")
        return ForcedDistribution(_forced_shares(raw, key, grades), mode="rank", group="department", min_group=1)
    unknown = sorted(str(k) for k in raw if str(k) not in options)
    if unknown:
        raise PolicyError(f"{key}.{unknown[0]}", "未知的配置项(可选:shares、mode、group、min_group)",
                          "unknown key (known keys: shares, mode, group, min_group)")
    shares = _forced_shares(raw["shares"], f"{key}.shares", grades)
    mode = raw.get("mode", "cap")
    if mode not in FORCED_MODES:
        raise PolicyError(f"{key}.mode", f"应为 cap(保留分数对应的等级,超出名额者逐级下调)或 rank(只按排名定等级),现为 {mode!r}",
                          f"must be cap (keep the score's grade, move the excess down) or rank (grade by rank alone), "
                          f"got {mode!r}")
    group = raw.get("group", "department")
    if group not in FORCED_GROUPS:
        raise PolicyError(f"{key}.group", f"应为 department(按部门)或 company(全公司一起),现为 {group!r}",
                          f"must be department or company, got {group!r}")
    min_group = _integer(raw, "min_group", key, 1) if "min_group" in raw else 10
    return ForcedDistribution(shares, mode=mode, group=group, min_group=min_group)


def _forced_shares(raw: object, path: str, grades: list[Grade]) -> dict[str, float]:
    """Each grade's share of a group, between 0 and 1, summing to 1; only grades from `grades`."""
    known = [g.grade for g in grades]
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(path, f"应为 等级 → 比例 的映射,如 {{S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}},现为 {raw!r}",
                          f"must map grades to shares, e.g. {{S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}}, got {raw!r}")
    for grade in raw:
        if str(grade) not in known:
            raise PolicyError(f"{path}.{grade}", f"不是 grades 中的等级(可选:{'、'.join(known)})",
                              f"is not a grade of the policy (grades: {', '.join(known)})")
        _number(raw, grade, path, 0, 1)
    total = sum((Decimal(repr(float(v))) for v in raw.values()), Decimal(0))
    if abs(total - 1) > Decimal("1e-6"):
        raise PolicyError(path, f"各等级比例之和应为 1,现为 {total}", f"the shares must sum to 1, got {total}")
    return {str(k): float(v) for k, v in raw.items()}
