"""Policy (SPEC §2): defaults in one place, overrides by key, clear bilingual errors naming the key."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from pipeline.policy import (
    DEFAULT_POLICY_TEXT,
    ForcedDistribution,
    Grade,
    Policy,
    PolicyError,
    load_policy,
    parse_policy,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "pipeline" / "default_policy.yaml"
CONFIG_FILE = ROOT / "config" / "policy.yaml"
CJK = re.compile(r"[\u4e00-\u9fff]")


def fields(policy: Policy) -> dict:
    # text and settings are the file and the merged settings as written: they change with any override
    return {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy) if f.name not in ("text", "settings")}


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults


def test_defaults_are_spec_section_2() -> None:
    p = load_policy()
    assert (p.cap, p.floor, p.lower_is_better) == (1.2, 0.0, "ratio")
    assert (p.base_score, p.stretch_score, p.scale_max) == (0.6, 1.2, 5.0)
    assert p.rater_weights == {"default": {"supervisor": 0.4, "peer": 0.3, "self": 0.3},
                               "销售": {"supervisor": 0.6, "self": 0.2, "customer": 0.2}}
    assert p.dimension_weights == {"销售": {"performance": 0.6, "ability": 0.25, "attitude": 0.15}}
    assert p.grades == (Grade("S", 1.10, 1.5), Grade("A", 1.00, 1.2), Grade("B", 0.90, 1.0),
                        Grade("C", 0.80, 0.8), Grade("D", 0.00, 0.0))
    assert p.forced_distribution is None
    assert p.decimals == 2 and p.max_sheets == 200
    assert p.weight_sum_tolerance == 0.001
    assert (p.indicators_min, p.indicators_max) == (3, 8)
    assert p.performance_weight_min == 0.6
    assert (p.too_easy, p.too_hard) == (0.9, 0.1)
    assert p.ri_table_name == "Saaty 1980"
    assert [p.ri_table[n] for n in range(1, 16)] == [0, 0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49,
                                                      1.51, 1.54, 1.56, 1.57, 1.59]
    assert p.text == DEFAULT_POLICY_TEXT
    assert p.sha256 == hashlib.sha256(DEFAULT_FILE.read_bytes()).hexdigest()


def test_config_policy_is_a_byte_copy_of_the_packaged_defaults() -> None:
    assert CONFIG_FILE.read_bytes() == DEFAULT_FILE.read_bytes()
    assert DEFAULT_POLICY_TEXT.encode("utf-8") == DEFAULT_FILE.read_bytes()
    assert fields(load_policy(CONFIG_FILE)) == fields(load_policy())


def test_default_file_is_commented_bilingual_yaml() -> None:
    text = DEFAULT_FILE.read_text("utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 10
    assert any(CJK.search(line) for line in comments)
    assert isinstance(yaml.safe_load(text), dict)


def test_empty_override_is_the_defaults(tmp_path: Path) -> None:
    for text in ("", "# nothing to change\n", "{}\n"):
        assert fields(load_policy(write(tmp_path, text))) == fields(load_policy())


def test_rater_weights_for() -> None:
    p = load_policy()
    assert p.rater_weights_for("销售") == {"supervisor": 0.6, "self": 0.2, "customer": 0.2}
    assert p.rater_weights_for("研发") == {"supervisor": 0.4, "peer": 0.3, "self": 0.3}


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(("text", "changed"), [
    ("achievement: {cap: 1.5}\n", {"cap": 1.5}),
    ("achievement:\n  lower_is_better: linear\n  floor: 0.1\n", {"lower_is_better": "linear", "floor": 0.1}),
    ("tiered: {stretch_score: 1.5}\n", {"stretch_score": 1.5}),
    ("rating: {scale_max: 10}\n", {"scale_max": 10.0}),
    ("checks: {calibration: {too_easy: 0.8}}\n", {"too_easy": 0.8}),
    ("checks:\n  indicators_per_employee: {max: 10}\n", {"indicators_max": 10}),
    ("rounding: {decimals: 1}\n", {"decimals": 1}),
    ("output: {max_sheets: 50}\n", {"max_sheets": 50}),
    ("forced_distribution: {S: 0.1, A: 0.2, B: 0.5, C: 0.15, D: 0.05}\n",
     {"forced_distribution": ForcedDistribution({"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05},
                                                mode="rank", group="department", min_group=1)}),
])
def test_override_changes_only_its_keys(tmp_path: Path, text: str, changed: dict) -> None:
    default = fields(load_policy())
    policy = load_policy(write(tmp_path, text))
    got = fields(policy)
    for key, value in changed.items():
        assert got[key] == value
    assert {k: v for k, v in got.items() if k not in changed} == {k: v for k, v in default.items() if k not in changed}
    assert policy.text == text
    assert policy.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_rater_weights_override_by_family(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "rater_weights:\n  研发: {supervisor: 0.5, peer: 0.5}\n"
                                          "  销售: {supervisor: 1}\n"))
    assert policy.rater_weights == {"default": {"supervisor": 0.4, "peer": 0.3, "self": 0.3},
                                    "销售": {"supervisor": 1.0},
                                    "研发": {"supervisor": 0.5, "peer": 0.5}}
    assert policy.rater_weights_for("行政") == {"supervisor": 0.4, "peer": 0.3, "self": 0.3}


def test_grades_override_replaces_the_list(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "grades:\n  - {grade: 优秀, min: 1.0, bonus: 1.3}\n"
                                          "  - {grade: 合格, min: 0.7, bonus: 1}\n"
                                          "  - {grade: 不合格, min: 0, bonus: 0}\n"))
    assert [g.grade for g in policy.grades] == ["优秀", "合格", "不合格"]
    assert policy.grades[1] == Grade("合格", 0.7, 1.0)


def test_empty_section_keeps_its_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "achievement:\n  # cap: 1.5  (commented out)\n"))
    assert fields(policy) == fields(load_policy())


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes("\ufeffachievement: {cap: 1.3}\n".encode("utf-8"))
    assert load_policy(path).cap == 1.3


# --------------------------------------------------------------------------- errors


BAD = [
    # (policy text, key the error names)
    ("bonus_table: {S: 2}\n", "bonus_table"),                                   # unknown top key
    ("achievement: {flor: 0.1}\n", "achievement.flor"),                         # unknown nested key
    ("checks: {calibration: {too_esy: 0.8}}\n", "checks.calibration.too_esy"),
    ("achievement: {cap: high}\n", "achievement.cap"),                          # cap not a number
    ("achievement: {cap: '1.2'}\n", "achievement.cap"),
    ("achievement: {cap: true}\n", "achievement.cap"),
    ("achievement: {cap: .nan}\n", "achievement.cap"),
    ("achievement: {cap: .inf}\n", "achievement.cap"),
    ("achievement: {floor: -0.1}\n", "achievement.floor"),
    ("achievement: {floor: 1.5}\n", "achievement.floor"),                       # above the cap
    ("achievement: {lower_is_better: inverse}\n", "achievement.lower_is_better"),
    ("achievement: 5\n", "achievement"),                                        # section not a mapping
    ("checks: {indicators_per_employee: 5}\n", "checks.indicators_per_employee"),
    ("tiered: {base_score: 1.3}\n", "tiered.base_score"),
    ("tiered: {stretch_score: 0.9}\n", "tiered.stretch_score"),
    ("rating: {scale_max: 0}\n", "rating.scale_max"),
    ("grades:\n  - {grade: A, min: 0.9, bonus: 1}\n  - {grade: B, min: 1.0, bonus: 1}\n", "grades[1].min"),
    ("grades:\n  - {grade: A, min: 0.9, bonus: 1}\n  - {grade: B, min: 0.9, bonus: 1}\n", "grades[1].min"),
    ("grades:\n  - {grade: A, min: 0.9, bonus: 1}\n  - {grade: A, min: 0.5, bonus: 1}\n", "grades[1].grade"),
    ("grades:\n  - {grade: A, bonus: 1}\n", "grades[0].min"),
    ("grades:\n  - {grade: A, min: 0.9, bonus: -1}\n", "grades[0].bonus"),
    ("grades: []\n", "grades"),
    ("grades: {S: 1.1}\n", "grades"),
    ("forced_distribution: {S: 0.2, A: 0.2, B: 0.5, C: 0.15, D: 0.05}\n", "forced_distribution"),  # sums to 1.1
    ("forced_distribution: {S: 0.5, X: 0.5}\n", "forced_distribution.X"),
    ("forced_distribution: {S: 1.5, A: -0.5}\n", "forced_distribution.S"),
    ("forced_distribution: [0.5, 0.5]\n", "forced_distribution"),
    ("rater_weights: {default: {boss: 0.5, peer: 0.5}}\n", "rater_weights.default.boss"),  # unknown relation
    ("rater_weights: {销售: {supervisor: 2}}\n", "rater_weights.销售.supervisor"),
    ("rater_weights: {销售: {supervisor: 0, self: 0}}\n", "rater_weights.销售"),
    ("rater_weights: {销售: []}\n", "rater_weights.销售"),
    ("rater_weights: 0.5\n", "rater_weights"),
    ("dimension_weights: {研发: {speed: 1}}\n", "dimension_weights.研发.speed"),
    ("dimension_weights: {研发: {performance: 0.8, ability: 0.4}}\n", "dimension_weights.研发"),
    ("rounding: {mode: half_even}\n", "rounding.mode"),
    ("rounding: {decimals: 7}\n", "rounding.decimals"),
    ("rounding: {decimals: true}\n", "rounding.decimals"),
    ("rounding: {decimals: 1.5}\n", "rounding.decimals"),
    ("output: {max_sheets: 0}\n", "output.max_sheets"),
    ("output: {max_sheets: true}\n", "output.max_sheets"),
    ("checks: {weight_sum_tolerance: 0.9}\n", "checks.weight_sum_tolerance"),
    ("checks: {indicators_per_employee: {min: 9}}\n", "checks.indicators_per_employee.min"),
    ("checks: {indicators_per_employee: {min: 2.5}}\n", "checks.indicators_per_employee.min"),
    ("checks: {calibration: {too_hard: 0.95}}\n", "checks.calibration.too_hard"),
    ("checks: {performance_weight_min: 60}\n", "checks.performance_weight_min"),
    ("ahp: {ri_table: []}\n", "ahp.ri_table"),
    ("ahp: {ri_table: [0, 0, x]}\n", "ahp.ri_table"),
    ("limits: {max_rows: many}\n", "limits.max_rows"),
    ("achievement: {cap: 1.3}\nachievement: {floor: 0.1}\n", "achievement"),      # written twice
    ("checks:\n  calibration: {too_easy: 0.8, too_easy: 0.7}\n", "too_easy"),
    ("achievement: {cap: 1.2\n", "(file)"),                                     # not YAML
    ("- cap: 1.2\n", "(file)"),                                                 # not a mapping
]


@pytest.mark.parametrize(("text", "key"), BAD, ids=[key + ":" + text.splitlines()[0][:30] for text, key in BAD])
def test_bad_values_raise_policy_error_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    error = info.value
    assert error.key == key
    assert error.zh and CJK.search(error.zh), error.zh
    assert error.en and not CJK.search(error.en.replace(key, "")), error.en
    zh, en = error.message("zh"), error.message("en")
    assert key in zh and error.zh in zh and CJK.search(zh)
    assert key in en and error.en in en
    assert zh == error.message() and zh.endswith(f"\n{en}")  # --lang zh: Chinese with the English beside it
    assert str(error).startswith(f"{key}: ")
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_bound_messages_read_well() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("achievement: {floor: -0.1}\n")
    assert info.value.en == "must be at least 0, got -0.1" and "None" not in info.value.zh
    with pytest.raises(PolicyError) as info:
        parse_policy("checks: {calibration: {too_easy: 1.5}}\n")
    assert info.value.key == "checks.calibration.too_easy" and "between 0 and 1" in info.value.en


def test_unknown_key_error_lists_the_known_keys() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("achievement: {flor: 0.1}\n")
    assert "floor" in info.value.en and "floor" in info.value.zh


def test_unreadable_policy_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(missing)
    assert info.value.key == str(missing)
    assert CJK.search(info.value.zh) and info.value.en
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PolicyError):
        load_policy(binary)
