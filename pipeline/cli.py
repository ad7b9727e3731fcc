"""The `kpi` command: a thin click layer over Python functions that do the work."""

from __future__ import annotations

import json
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from pipeline import __version__, guard, signals
from pipeline.findings import BilingualError, Finding, sort_findings
from pipeline.policy import PolicyError, load_policy
from pipeline.signals import stop_on_signals
from pipeline.texts import plural, say

if TYPE_CHECKING:
    from pipeline.periods import Period

LANG = click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                    help="zh: Chinese with English beside it; en: English only. 中文(附英文)或仅英文。")
POLICY = click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="Policy YAML (defaults: config/policy.yaml shipped with the package).")


def _policy(path: Path | None, lang: str):
    try:
        return load_policy(path)
    except PolicyError as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)


def format_findings(findings: list[Finding], lang: str) -> str:
    """Findings grouped by file, one line each: cell, severity, message (both languages by default)."""
    lines: list[str] = []
    current = None
    for f in sort_findings(findings):
        file = f.file or say("(收件箱)", "(inbox)", lang)
        if file != current:
            current = file
            lines.append("")
            lines.append(click.style(f"■ {file}", bold=True))
        where = "!".join(p for p in (f.sheet, f.cell) if p) or "-"
        tag = click.style("错误 error" if lang != "en" else "error", fg="red") if f.is_error else \
            click.style("警告 warning" if lang != "en" else "warning", fg="yellow")
        message = f.message_en if lang == "en" else f"{f.message_zh}\n{' ' * 6}{f.message_en}"
        lines.append(f"  {where:<28} {tag}  [{f.rule}] {message}")
    return "\n".join(lines)


# Help and usage errors in both languages: click's own words are English only.
HELP_OPTION_TEXT = "显示本帮助并退出。 Show this message and exit."
COMMAND_SUMMARIES = {  # each command in one line of `kpi --help` (others: their help's first sentence)
    "demo": ("生成示例公司并运行一次", "write an example company and run it"),
    "diff": ("比较两个工作簿", "compare two workbooks"),
    "run": ("校验、计分并输出一个考核周期", "validate, score and write one period"),
    "templates": ("生成空白模板", "write the blank templates"),
    "trace": ("追溯计分卡上每个数字的来源", "trace a scorecard's numbers to their input cells"),
    "validate": ("逐个单元格检查收件箱", "check the inbox, cell by cell"),
    "verify": ("按审计清单校验输出文件", "check a period's files against its audit manifest"),
    "weights": ("由专家打分和层次分析法计算指标权重", "indicator weights from expert scores and AHP"),
}


class _BilingualHelp:
    """Usage line, section titles and the help option in Chinese with English beside them."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def format_usage(self, ctx, formatter) -> None:
        english = guard.lang_of(ctx.meta.get("kpi.argv", [])) == "en"
        formatter.write_usage(ctx.command_path, " ".join(cast(click.Command, self).collect_usage_pieces(ctx)),
                              prefix="Usage: " if english else "用法 Usage: ")

    def format_options(self, ctx, formatter) -> None:
        rows = [param.get_help_record(ctx) for param in cast(click.Command, self).get_params(ctx)
                if not isinstance(param, click.Argument)]
        if any(rows):
            with formatter.section("选项 Options"):
                formatter.write_dl([row for row in rows if row])


class _Command(_BilingualHelp, click.Command):
    pass


def _hint(exc: click.UsageError) -> str:
    """How the command line names the parameter a usage error is about ('--period', 'INBOX')."""
    param = getattr(exc, "param", None)
    if param is not None and exc.ctx is not None:
        try:
            return param.get_error_hint(exc.ctx)
        except Exception:  # an older click without the hint: name the parameter plainly
            return param.name or ""
    hint = getattr(exc, "param_hint", None) or ""
    return " / ".join(hint) if isinstance(hint, (list, tuple)) else str(hint)


def usage_error_zh(exc: click.UsageError) -> str:
    """The Chinese of a usage error click words in English: the usual slips, said plainly."""
    message = exc.format_message()
    if isinstance(exc, click.NoSuchOption):
        guesses = sorted(exc.possibilities or [])
        return f"没有选项 {exc.option_name}" + (f",是否想用 {'、'.join(guesses)}?" if guesses else "。")
    if isinstance(exc, click.MissingParameter):
        what = "参数" if isinstance(exc.param, click.Argument) else "选项"
        return f"缺少{what} {_hint(exc)}。"
    if isinstance(exc, click.BadParameter):
        hint = _hint(exc)
        found = re.search(r"'([^']*)' does not exist", message)
        if found:
            return f"{hint}:“{found.group(1)}”不存在,请检查路径。"
        found = re.search(r"'([^']*)' is a (file|directory)", message)
        if found:
            should = "文件夹" if found.group(2) == "file" else "文件"
            return f"{hint}:“{found.group(1)}”应为{should}。"
        found = re.search(r"'([^']*)' is not one of (.*)\.", message)
        if found:
            return f"{hint}:“{found.group(1)}”不是可选的值,可选:{found.group(2)}。"
        if "range" in message:
            return f"{hint}:超出允许的范围。"
        return f"{hint} 的值无效。"
    found = re.match(r"No such command '(.*)'", message)
    if found:
        return f"没有命令“{found.group(1)}”。用 kpi --help 查看全部命令。"
    found = re.match(r"Got unexpected extra arguments? \((.*)\)", message)
    if found:
        return f"多余的参数:{found.group(1)}。"
    return "命令行用法有误。"


def _bilingual_usage_error(exc: click.UsageError, lang: str) -> None:
    """`exc`, shown with a Chinese line beside click's English (English only with --lang en)."""

    def show(file=None) -> None:
        file = file or sys.stderr
        ctx = exc.ctx
        if ctx is not None:
            helps = ctx.command.get_help_option_names(ctx) if ctx.command.get_help_option(ctx) else []
            click.echo(ctx.get_usage(), file=file, color=ctx.color)
            if helps:
                option = max(helps, key=len)
                click.echo(say(f"用 '{ctx.command_path} {option}' 查看帮助。",
                               f"Try '{ctx.command_path} {option}' for help.", lang), file=file)
            click.echo("", file=file)
        click.echo(say(f"错误:{usage_error_zh(exc)}", f"Error: {exc.format_message()}", lang, "\n"), file=file)

    if not getattr(exc, "_kpi_bilingual", False):
        exc.show = show  # type: ignore[method-assign]
        exc._kpi_bilingual = True  # type: ignore[attr-defined]


class _LazyGroup(_BilingualHelp, click.Group):
    """Commands whose modules are imported only when used: `kpi run` need not load openpyxl.

    Also the one place every command passes through: each gets the exit codes in its help, and
    whatever escapes a command ends as one line and an exit code (`_guarded`), never a traceback.
    Help and usage errors are bilingual here too.
    """

    lazy: dict[str, tuple[str, str]] = {}  # name -> (module, attribute) of a command loaded on first use
    command_class = _Command

    def format_options(self, ctx, formatter) -> None:
        super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx, formatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, cmd) for name, cmd in commands if cmd is not None and not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = []
            for name, cmd in commands:
                zh, en = COMMAND_SUMMARIES.get(name, ("", ""))
                rows.append((name, f"{zh} {en}" if zh else cmd.get_short_help_str(limit)))
            with formatter.section("命令 Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            import importlib

            module, attribute = self.lazy[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def add_command(self, cmd, name=None):
        if not cmd.epilog:
            cmd.epilog = guard.EXIT_CODES_HELP
        super().add_command(cmd, name)

    def make_context(self, info_name, args, parent=None, **extra):
        argv = list(args)  # kept for the crash report and the guard's language, before parsing
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _bilingual_usage_error(exc, guard.lang_of(argv))
            raise
        ctx.meta["kpi.argv"] = argv
        return ctx

    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta["kpi.command"] = (name, cmd, list(rest))
        return name, cmd, rest

    def invoke(self, ctx):
        with stop_on_signals():
            try:
                return super().invoke(ctx)
            except click.UsageError as exc:  # a slip on the command line: said in both languages
                _bilingual_usage_error(exc, guard.lang_of(ctx.meta.get("kpi.argv", sys.argv[1:])))
                raise
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
                raise
            except BrokenPipeError:  # the reader of a pipe went away (`kpi validate | head`): click's case
                raise
            except BaseException as exc:  # KeyboardInterrupt too: Ctrl-C and SIGTERM end here
                sys.exit(_guarded(ctx, exc))


def _guarded(ctx: click.Context, exc: BaseException) -> int:
    """Say in one line what stopped the command; the exit code.

    Ctrl-C and SIGTERM: 130 and 143. A message meant for the person (a usage problem): 2. The
    environment (disk full, permission, read-only or missing folder, a dead worker, memory) and
    anything unexpected: 3, with a crash report holding the traceback.
    """
    argv = ctx.meta.get("kpi.argv", sys.argv[1:])
    lang = guard.lang_of(argv)
    name, cmd, rest = ctx.meta.get("kpi.command", (ctx.invoked_subcommand or "", None, []))
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", signal.SIGINT)
        cleaned = name in ("run", "demo")  # a run removes its unfinished output on the way out
        guard.echo_line(guard.stopped_line(signal.Signals(signum).name, command=name, cleaned=cleaned, lang=lang))
        return 128 + signum
    if isinstance(exc, (BilingualError, PolicyError)) and not isinstance(exc, guard.EnvironmentFailure):
        # a message meant for the person (a lock held, a missing inbox): a usage problem
        guard.echo_line(exc.message(lang))
        return 2
    report = guard.write_crash_report(exc, argv)
    guard.echo_line(guard.failure_line(exc, command=name, output=_output_of(ctx, name, cmd, rest), report=report, lang=lang))
    return guard.EXIT_ENVIRONMENT


def _output_of(ctx: click.Context, name: str, cmd, rest: list[str]) -> Path | None:
    """Where the command writes (its --out, or the demo's folder), to name when the system
    refused a write without saying which file (a full disk)."""
    if cmd is None:
        return None
    try:
        params = cmd.make_context(name, list(rest), parent=ctx, resilient_parsing=True).params
    except Exception:  # the command line cannot even be read again: name nothing
        return None
    for key in ("out_dir", "out_path", "out"):
        if params.get(key):
            return Path(params[key])
    if name == "demo" and params.get("folder"):
        return Path(params["folder"]) / "output"
    return None


def other_periods_line(other: list[Finding], lang: str) -> str:
    """"N more findings concern other periods (2026-09)": said once, not counted as this run's."""
    periods = sorted({f.period for f in other})
    if len(other) == 1:
        en = f"1 more finding concerns another period ({', '.join(periods)})"
    else:
        en = f"{len(other)} more findings concern other periods ({', '.join(periods)})"
    return say(f"另有 {len(other)} 条问题属于其他考核周期 ({'、'.join(periods)})", en, lang)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=guard.EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="kpi", help="显示版本并退出。 Show the version and exit.")
def main() -> None:
    """由 HR 填写的 Excel 模板生成 KPI 计分卡。 KPI scorecards from the Excel templates HR already fills.

    \b
    每月流程 Typical month:
      kpi templates                       # 空白模板(一次) blank templates (once)
      kpi validate inbox/                 # 逐个单元格检查 check HR's files, cell by cell
      kpi run inbox/ --period 2026-10     # 计分并写入 score everyone, write output/2026-10/
      kpi verify output/2026-10           # 证明文件未被改动 prove the files are the ones produced
    马上试试 Try it now:  kpi demo example
    """


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("workbooks/templates"), show_default=True, help="Folder for the templates.")
@click.option("--indicators", "library", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An indicator library: write only the ratings template, listing its rating indicators' "
                   "behaviour anchors on the 评分标准 Anchors sheet.")
@LANG
def templates(out_dir: Path, library: Path | None, lang: str) -> None:
    """Write the seven blank templates (roster, indicators, agreements, actuals, ratings, weights,
    dept_targets) into OUT.

    With --indicators, write only OUT/ratings.xlsx, whose 评分标准 Anchors sheet lists each
    rating indicator of that library with the behaviour described for levels 1–5.

    \b
    Examples:
      kpi templates --out ~/hr/templates
      kpi templates --indicators inbox/indicators.xlsx --out ~/hr/360
    """
    from pipeline.templates import write_all_templates, write_ratings_template

    if library is None:
        for path in write_all_templates(out_dir):
            click.echo(str(path))
        return
    indicators, problems = _indicator_library(library, lang)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_ratings_template(out_dir / "ratings.xlsx", indicators)
    rated = int((indicators["method"] == "rating").sum())
    click.echo(str(path))
    click.echo(say(f"评分类指标 {rated} 个", f"{plural(rated, 'rating indicator')}", lang))
    if problems:
        click.echo(format_findings(problems, lang), err=True)
        click.echo(say(f"{library.name} 中有 {len(problems)} 个错误,出错的行未列入;请先修正(kpi validate)。",
                        f"{plural(len(problems), 'error')} in {library.name}: the rows with errors are left out; "
                        "fix them first (kpi validate).", lang), err=True)
        sys.exit(1)


def _indicator_library(path: Path, lang: str):
    """(the validated indicator library in `path`, its errors); exit 2 if it is no indicator library."""
    from pipeline.policy import parse_policy
    from pipeline.reader import read_workbook
    from pipeline.validate import validate

    workbook = read_workbook(path)
    if workbook.kind != "indicators":
        if workbook.findings:
            click.echo(format_findings(workbook.findings, lang), err=True)
        click.echo(say(f"{path.name} 不是指标库(需要“指标库 Indicators”工作表或其表头)。",
                        f"{path.name} is not an indicator library (expected the 指标库 Indicators sheet "
                        "or its headers).", lang), err=True)
        sys.exit(2)
    inputs = validate([workbook], parse_policy(""))
    problems = [f for f in inputs.findings if f.is_error and f.file == workbook.file]
    return inputs.indicators, problems


def validate_inbox(inbox: Path, policy, period: Period | str | None = None):
    """Read and validate every workbook in `inbox`; returns the Inputs with all findings."""
    from pipeline.reader import read_inbox
    from pipeline.validate import validate

    return validate(read_inbox(inbox, policy.limits), policy, period)


def findings_for_period(inputs, policy, period: Period | str) -> list:
    """What `kpi run` would report for `period` (scoring's and the weights' findings too), so
    `validate --period` and `run` count the same errors and warnings; nothing is written."""
    from pipeline.batch import inbox_periods, no_data_finding, score_inputs

    no_data = no_data_finding(period, inbox_periods(inputs))
    if no_data is not None:
        return [no_data, *inputs.findings]
    return score_inputs(inputs, policy, period)[2]


@main.command("validate")
@click.argument("inbox", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--period", help="Also check that every agreed indicator has its actuals for this period; "
                               "problems in rows of other periods are listed but do not fail the check.")
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON on stdout.")
@POLICY
@LANG
def validate_command(inbox: Path, period: str | None, as_json: bool, policy_path: Path | None, lang: str) -> None:
    """Check every workbook in INBOX and list each problem by file, sheet and cell.

    Exit 1 if any error was found, 0 otherwise (warnings alone do not fail). With --period,
    errors in rows of other periods are listed, labelled with their period, and do not count.

    \b
    Examples:
      kpi validate inbox/
      kpi validate inbox/ --period 2026-10 --lang en
    """
    from pipeline.batch import BatchError, check_period

    policy = _policy(policy_path, lang)
    try:
        scored = check_period(period) if period else None
    except BatchError as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    inputs = validate_inbox(inbox, policy, scored)
    findings = inputs.findings
    other: list[Finding] = []
    if scored:  # what concerns rows of other periods is listed, labelled, and does not fail the check
        from pipeline.batch import other_period_finding, split_by_period

        findings, other = split_by_period(findings_for_period(inputs, policy, scored), scored)
    errors = sum(f.is_error for f in findings)
    listed = findings + [other_period_finding(f, scored) for f in other if scored]
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in sort_findings(listed)], ensure_ascii=False, indent=2))
    else:
        files = len(inputs.workbooks)
        if listed:
            click.echo(format_findings(listed, lang))
            click.echo("")
        click.echo(say(f"已检查 {files} 个文件:{errors} 个错误,{len(findings) - errors} 个警告。",
                        f"Checked {plural(files, 'file')}: {plural(errors, 'error')}, "
                        f"{plural(len(findings) - errors, 'warning')}.", lang))
        if other:
            click.echo(other_periods_line(other, lang))
    sys.exit(1 if errors else 0)


def _progress_factory():
    if not sys.stderr.isatty():
        return None

    def factory(total: int):
        bar = click.progressbar(length=total, label="写入计分卡 writing scorecards", file=sys.stderr)
        bar.__enter__()

        class Bar:
            update = staticmethod(bar.update)

            @staticmethod
            def finish():
                bar.__exit__(None, None, None)

        return Bar()

    return factory


# Warnings about a whole input file (a copy that was ignored, a file that changed while the run
# read it): listed before the others, whatever their file.
FILE_NOTICES = frozenset({"duplicate_file", "input_changed"})
SHOWN_WARNINGS = 10  # the console lists this many; summary.xlsx holds them all


def shown_warnings(warnings: list[Finding], limit: int = SHOWN_WARNINGS) -> tuple[list[Finding], int]:
    """The warnings the console lists (file notices first, then by file, sheet and cell) and how
    many more there are."""
    ordered = sort_findings(warnings)
    ordered = [f for f in ordered if f.rule in FILE_NOTICES] + [f for f in ordered if f.rule not in FILE_NOTICES]
    return ordered[:limit], max(len(ordered) - limit, 0)


def counts_line(errors: int, warnings: int, lang: str) -> str:
    """"2 errors, 1 warning": the same words for validate and run."""
    return say(f"错误 {errors} 个,警告 {warnings} 个", f"{plural(errors, 'error')}, {plural(warnings, 'warning')}", lang,
               ";")


def unscored_lines(unscored, lang: str, limit: int = 10) -> list[str]:
    """Each unscored employee with every reason (one a line) and where to look."""
    lines = []
    for item in unscored.head(limit).itertuples(index=False):
        reasons = str(item.reason_en if lang == "en" else item.reason_zh).split("\n")
        if lang != "en":
            reasons = [f"{zh} {en}" for zh, en in zip(reasons, str(item.reason_en).split("\n"))]
        name = item.name if isinstance(item.name, str) else ""
        head = f"    - {item.employee_id}" + (f" {name}" if name else "") + ":"
        lines.append(head + (f" {reasons[0]}" if len(reasons) == 1 else ""))
        if len(reasons) > 1:
            lines.extend(f"        · {reason}" for reason in reasons)
        if item.where:
            lines.append(f"        {say('位置', 'where', lang)}: {item.where}")
    if len(unscored) > limit:
        more = len(unscored) - limit
        lines.append(say(f"    ……还有 {more} 人,见 summary.xlsx", f"    ... and {more} more in summary.xlsx", lang))
    return lines


def print_run_summary(result, lang: str) -> None:
    """One screen: scored, unscored (every reason), the warnings, grade distribution, where the files are."""
    scores = result.scores
    totals = scores.totals
    headline = say(f"考核周期 {result.period}", f"Period {result.period}", lang)
    if getattr(result, "as_of", None):  # a progress run: never to be taken for the period's result
        headline += "  " + say(f"进度 截至 {result.as_of}", f"Progress to date as of {result.as_of}", lang)
    click.echo(click.style(headline, bold=True))
    click.echo("  " + say(f"已评分 {len(totals)} 人,未评分 {len(scores.unscored)} 人",
                          f"scored {len(totals)}, not scored {len(scores.unscored)}", lang, ";"))
    grades = Counter(totals["grade"])
    if grades:
        order = [g.grade for g in result.policy_grades] or sorted(grades)
        click.echo("  " + say("等级分布", "grades", lang) + ": " + "  ".join(f"{g}={grades.get(g, 0)}" for g in order))
    click.echo("  " + counts_line(len(result.errors), len(result.warnings), lang))
    listed, more = shown_warnings(result.warnings)
    if listed:
        click.echo("\n".join("  " + line if line else "" for line in format_findings(listed, lang).splitlines()))
        if more:
            click.echo(say(f"  还有 {more} 条警告,见 summary.xlsx", f"  and {more} more in summary.xlsx", lang, " / "))
        click.echo("")
    if result.other_periods:
        click.echo("  " + other_periods_line(result.other_periods, lang))
    if not scores.unscored.empty:  # headed, so the reasons are not taken for more warnings
        click.echo("  " + say("未评分员工及原因", "Not scored, and why", lang) + ":")
    for line in unscored_lines(scores.unscored, lang):
        click.echo(line)
    click.echo("  " + say(f"输出: {result.period_dir}", f"output: {result.period_dir}", lang))
    for sub in ("departments", "managers", "employees", "summary.xlsx", "errors", "audit/manifest.json",
                "audit/manifest.sig"):
        if (result.period_dir / sub).exists():
            click.echo(f"    {result.period_dir / sub}")
    for line in result.housekeeping.lines(lang):  # what became of the previous run, leftovers repaired
        click.echo(f"  {line}")


@main.command("run")
@click.argument("inbox", type=click.Path(file_okay=False, path_type=Path))
@click.option("--period", required=True, help="2026-10, 2026-Q3, 2026-H1 or 2026.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("output"),
              show_default=True, help="Results go to OUT/PERIOD/.")
@click.option("--strict", is_flag=True, help="Write no scorecards if anything is wrong.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes that read a big inbox and write the workbooks (default: cores).")
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON on stdout.")
@click.option("--as-of", "as_of", metavar="MONTH",
              help="Progress to date: score a quarter, half or year up to this month of it (e.g. 2026-08), "
                   "into OUT/PERIOD-to-MONTH/; the final folder is left alone.")
@click.option("--sign-key", "sign_key", type=click.Path(path_type=Path),
              help="Private key (kpi keys new) to sign audit/manifest.json and audit/run.json with.")
@click.option("--per-employee", is_flag=True,
              help="Also one workbook per employee, holding only their scorecard: employees/<部门>/<员工编号>.xlsx.")
@click.option("--passwords", "passwords_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Encrypt each employee's workbook with their password from this list (员工编号 Employee ID, "
                   "密码 Password; .xlsx or .csv; at least 8 characters). Implies --per-employee.")
@click.option("--generate-passwords", is_flag=True,
              help="Encrypt each employee's workbook with a new random password, listed in "
                   "employees/passwords.xlsx encrypted with $KPI_MASTER_PASSWORD. Implies --per-employee.")
@POLICY
@LANG
def run_command(inbox: Path, period: str, out_dir: Path, strict: bool, jobs: int | None, as_json: bool,
                as_of: str | None, per_employee: bool, passwords_file: Path | None, generate_passwords: bool,
                policy_path: Path | None, lang: str, sign_key: Path | None = None) -> None:
    """Validate, score and write one period: department scorecards, summary.xlsx, errors workbooks
    and the audit manifest in OUT/PERIOD/.

    Exit 1 when some inputs had errors or employees could not be scored (all exit codes
    below). Problems in rows of other periods are reported
    (labelled with their period) but do not change the exit code. A period the inbox has no
    rows for exits 1, writes nothing and names the periods the inbox does hold.

    \b
    Examples:
      kpi run inbox/ --period 2026-10
      kpi run inbox/ --period 2026-Q3 --out /srv/kpi --strict
      kpi run inbox/ --period 2026-10 --json --lang en
      kpi run inbox/ --period 2026-Q3 --as-of 2026-08
      kpi run inbox/ --period 2026-10 --sign-key ~/.kpi/kpi.key
      KPI_MASTER_PASSWORD=... kpi run inbox/ --period 2026-10 --generate-passwords
    """
    from pipeline.batch import BatchError, run_batch
    from pipeline.distribution import DistributionError

    policy = _policy(policy_path, lang)
    try:
        result = run_batch(inbox, period, out_dir, policy, strict=strict, lang=lang, jobs=jobs,
                           progress_factory=None if as_json else _progress_factory(), as_of=as_of,
                           sign_key=sign_key, per_employee=per_employee, passwords_file=passwords_file,
                           generate_passwords=generate_passwords)
    except (BatchError, DistributionError) as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    elif result.no_data:  # one line naming the periods the inbox holds (after any error that may explain why)
        explained = [f for f in result.errors if f.rule != "no_period_data"]
        if explained:
            click.echo(format_findings(explained, lang))
            click.echo("")
        for f in result.errors:
            if f.rule == "no_period_data":
                click.echo(f.message(lang))
    else:
        if result.errors:
            click.echo(format_findings(result.errors, lang))
            click.echo("")
        print_run_summary(result, lang)
    sys.exit(result.exit_code)


@main.command("demo")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("example"))
@click.option("--period", default="2026-10", show_default=True)
@LANG
def demo_command(folder: Path, period: str, lang: str) -> None:
    """Write a filled example company (50 people: 15 sales, 25 R&D, 10 admin) into FOLDER/inbox
    and run the monthly batch on it into FOLDER/output.

    \b
    Example:  kpi demo example && open example/output/2026-10/departments/
    """
    from pipeline.batch import run_batch
    from pipeline.demo import build_demo_inbox

    inbox = folder / "inbox"
    info = build_demo_inbox(inbox)
    click.echo(say(f"示例公司已写入 {inbox}(含 {len(info['mistakes'])} 处故意的错误)",
                    f"Example company written to {inbox} (with {len(info['mistakes'])} planted mistakes)", lang))
    result = run_batch(inbox, period, folder / "output", load_policy(), lang=lang,
                       progress_factory=_progress_factory())
    if result.no_data:  # a period the example company has no rows for: say which it has
        for f in result.errors:
            click.echo(f.message("en" if lang == "en" else "both"))
        sys.exit(result.exit_code)
    print_run_summary(result, lang)
    click.echo("")
    click.echo(say("打开部门计分卡:", "Open the department scorecards:", lang))
    for path in sorted((result.period_dir / "departments").glob("*.xlsx")):
        click.echo(f"    {path}")
    errors_dir = result.period_dir / "errors"
    if errors_dir.exists():
        click.echo(say("故意的错误标注在:", "The planted mistakes are marked in:", lang))
        for path in sorted(errors_dir.glob("*.xlsx")):
            click.echo(f"    {path}")


def compute_weights_file(path: Path, policy):
    """Weights (expert scores and AHP) of one weights workbook, with every finding: validated and
    computed as the batch does for a weights file in the inbox."""
    from pipeline.batch import compute_inbox_weights
    from pipeline.reader import read_workbook
    from pipeline.validate import validate

    workbook = read_workbook(path, path.name, policy.limits)
    if workbook.kind not in (None, "weights") and not workbook.findings:
        from pipeline.findings import finding

        return [], [finding("unknown_kind", file=path.name)]
    inputs = validate([workbook], policy)
    findings = [f for f in inputs.findings if f.rule not in ("missing_input",)]
    if workbook.kind != "weights":
        return [], findings
    results, weight_findings = compute_inbox_weights(inputs, policy)
    return results, findings + weight_findings


@main.command("weights")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Results as JSON on stdout (one object per role family: weights, λmax, CI, RI, CR, Kendall's W).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a weights workbook (权重 Weights, 一致性 Consistency).")
@click.option("--period", help="With --out: also a pre-filled 岗位指标 RoleKPIs sheet for this period.")
@POLICY
@LANG
def weights_command(file: Path, as_json: bool, out_path: Path | None, period: str | None,
                    policy_path: Path | None, lang: str) -> None:
    """Indicator weights from expert scores (专家打分法) and AHP matrices (层次分析法) in FILE.

    Reports each role family's weights, AHP λmax, CI, RI (Saaty 1980), CR and Kendall's W.
    Exit 1 when a matrix is inconsistent (CR ≥ 0.10) or the file has errors.

    \b
    Examples:
      kpi weights weights.xlsx
      kpi weights weights.xlsx --json
      kpi weights weights.xlsx --out weights_result.xlsx --period 2026-Q4
    """
    from pipeline.weights import kendall_w_meaning, largest_remainder

    policy = _policy(policy_path, lang)
    results, findings = compute_weights_file(file, policy)
    errors = any(f.is_error for f in findings)
    if out_path is not None and results:
        from pipeline.writers.weights_book import write_weights_workbook

        write_weights_workbook(out_path, results, role_kpis_period=period)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in results], ensure_ascii=False, indent=2))
        if findings:
            click.echo(format_findings(findings, lang), err=True)
    else:
        for r in results:
            click.echo(click.style(f"{r.role_family}  ({'专家打分 expert' if r.method == 'expert' else 'AHP'})", bold=True))
            shown = largest_remainder(list(r.weights.values()), 2)
            for (indicator, _), pct in zip(r.weights.items(), shown):
                click.echo(f"  {indicator:<14} {pct:>7}%")
            figures = {"λmax": r.lambda_max, "CI": r.ci, "RI": r.ri, "CR": r.cr}
            if any(v is not None for v in figures.values()):
                click.echo("  " + "  ".join(f"{k}={v:.4f}" for k, v in figures.items() if v is not None))
            meaning = kendall_w_meaning(r.kendall_w) if r.kendall_w is not None else None
            if meaning is not None:  # the figure, and what it means for using the weights
                click.echo(f"  Kendall W={r.kendall_w:.4f}  " + say(meaning["zh"] + "。", meaning["en"] + ".", lang))
        if findings:
            click.echo(format_findings(findings, lang))
        if out_path is not None and results:
            click.echo(str(out_path))
    sys.exit(1 if errors else 0)


@main.command("diff")
@click.argument("a", metavar="A.xlsx", type=click.Path(dir_okay=False))
@click.argument("b", metavar="B.xlsx", type=click.Path(dir_okay=False))
@click.option("--tolerance", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Numbers differing by at most this (absolute) are equal. 数值差的绝对值不超过此值视为相同。")
@click.option("--by-key", "by_key", multiple=True, metavar="KEY",
              help="Match rows by these columns instead of the template's key columns (repeat or "
                   "comma-separate): employee_id/员工编号, indicator_id/指标编号, period/考核周期, or any header "
                   "text. 按指定的列匹配行(默认按模板的关键列)。")
@click.option("--by-position", "by_position", is_flag=True,
              help="Compare every sheet cell by cell at the same address, without matching rows. "
                   "逐个单元格按位置比较,不匹配行。")
@click.option("--json", "as_json", is_flag=True,
              help='Print a JSON list of {"sheet","cell","kind","old","new"} (raw values). 以 JSON 输出(原始值)。')
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Also write an xlsx report: the changes, and A and B side by side (landscape, one page "
                   "wide). 另写一份 xlsx 差异报告。")
@LANG
def diff_command(a: str, b: str, tolerance: float, by_key: tuple[str, ...], by_position: bool,
                 as_json: bool, out: str | None, lang: str) -> None:
    """Compare two workbooks: values and formulas separately, rows matched by key, VBA macro
    projects by hash.

    \b
    比较两个工作簿:分别比较值与公式,按关键列匹配行,列出新增/删除的行与工作表,并按哈希比较 VBA 宏项目。
    A sheet with a template's key columns (actuals: 员工编号, 考核周期, 指标编号) has its rows
    matched by key, so an inserted or deleted row is one change; other sheets are compared cell
    by cell. Values are shown as their cells show them (30%, 1,234.50, 2026-10-01).
    有模板关键列的工作表按关键列匹配行(插入或删除一行只算一处差异),其他工作表逐个单元格比较;
    数值按单元格自身的数字格式显示。
    Exit 1 when the workbooks differ (all exit codes below). 有差异时退出码为 1。

    \b
    Examples / 示例:
      kpi diff old.xlsx new.xlsx
      kpi diff old.xlsx new.xlsx --tolerance 0.005
      kpi diff actuals_v1.xlsx actuals_v2.xlsx --out report.xlsx
      kpi diff actuals_v1.xlsx actuals_v2.xlsx --by-position
      kpi diff list_v1.xlsx list_v2.xlsx --by-key 工号
      kpi diff a.xlsx b.xlsx --json > changes.json
    """
    from pipeline import diff

    if by_key and by_position:
        click.echo(diff.by_key_and_position_note(lang), err=True)
        sys.exit(2)
    if out and any(Path(out).resolve() == Path(p).resolve() for p in (a, b)):
        click.echo(diff.out_is_input_note(out, lang), err=True)
        sys.exit(2)
    try:
        result = diff.compare(a, b, tolerance=tolerance, by_key=list(by_key), by_position=by_position)
    except diff.DiffInputError as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    if result.keys_unmatched:
        click.echo(diff.keys_unmatched_note(by_key, lang), err=True)
    if as_json:
        click.echo(json.dumps([c.as_json() for c in result.changes], ensure_ascii=False, indent=2))
    else:
        click.echo(diff.format_changes(result.changes, lang))
    if result.plans and result.changes:
        click.echo(diff.keyed_note(result.plans, lang), err=True)
    if out:
        diff.write_diff_report(out, result.a, result.b, result.changes, lang=lang, by_key=list(by_key),
                               by_position=by_position)
        click.echo(diff.report_written_note(out, lang), err=as_json)
    sys.exit(1 if result.changes else 0)


@main.command("verify")
@click.argument("period_dir", metavar="DIR/P", type=click.Path())
@click.option("--public-key", "public_key", type=click.Path(path_type=Path),
              help="The public key (kpi.pub) to check the signatures with. 用于校验签名的公钥。")
@click.option("--passwords", "passwords_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also decrypt the encrypted per-employee files (employee_id, password: .xlsx or .csv; "
                   "the generated employees/passwords.xlsx with KPI_MASTER_PASSWORD) and check their content. "
                   "同时解密并核对加密的个人计分卡。")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON on stdout. 以 JSON 输出。")
@LANG
def verify_command(period_dir: str, public_key: Path | None, passwords_file: Path | None, as_json: bool,
                   lang: str) -> None:
    """Re-hash every output file of a period against its audit manifest.

    \b
    按审计清单重新计算输出文件的 SHA-256,列出被修改、缺失和清单外的文件;给出 --public-key 时
    还校验清单和运行记录的签名(kpi run --sign-key 所写)。
    Exit 0 when everything matches (全部一致); 1 when a file changed, is missing or is not in
    the manifest, a signature is missing or does not match the public key, or there is no
    manifest (有不一致、签名缺失或不符、或没有清单); 2 when the public key cannot be used
    (公钥无法使用).

    \b
    Examples / 示例:
      kpi verify output/2026-10
      kpi verify output/2026-10 --public-key auditor/kpi.pub
      kpi verify output/2026-10 --passwords hr/passwords.xlsx
      kpi verify output/2026-Q3 --json
    """
    from pipeline.audit import ManifestError, format_report, verify
    from pipeline.distribution import DistributionError, load_passwords
    from pipeline.signing import SigningError

    try:
        passwords = load_passwords(passwords_file) if passwords_file is not None else None
        report = verify(Path(period_dir), public_key=public_key, passwords=passwords)
    except (SigningError, DistributionError) as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    except ManifestError as exc:
        click.echo(exc.message(lang), err=True)
        if as_json:
            click.echo(json.dumps({"ok": False, "error": exc.message("en"), "error_zh": exc.zh},
                                  ensure_ascii=False, indent=2))
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_report(report, lang))
    sys.exit(0 if report.ok else 1)


@main.command("trace")
@click.argument("period_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("employee_id")
@click.option("--json", "as_json", is_flag=True, help="The trace as JSON on stdout.")
@LANG
def trace_command(period_dir: Path, employee_id: str, as_json: bool, lang: str) -> None:
    """Every number on EMPLOYEE_ID's scorecard with the input cell it came from (file, sheet,
    cell, SHA-256 of the file) and the formula that made it.

    Exit 1 when the folder has no manifest or the employee is not in it.

    \b
    Example:  kpi trace output/2026-10 E011
    """
    from pipeline.audit import ManifestError
    from pipeline.trace import TraceError, format_trace, trace_employee

    try:
        report = trace_employee(period_dir, employee_id)
    except (TraceError, ManifestError) as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(format_trace(report, lang))


# ------------------------------------------------------------------------------ results history

@main.command("history")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.argument("employee_id")
@click.option("--json", "as_json", is_flag=True, help="The history as JSON on stdout.")
@LANG
def history_command(out_dir: Path, employee_id: str, as_json: bool, lang: str) -> None:
    """One employee's results over time, from OUT/history.sqlite: each period's current result
    (total, grade, bonus, the run it comes from) and every run that scored them.

    Exit 1 when no run has scored EMPLOYEE_ID.

    \b
    Examples:
      kpi history output S001
      kpi history output S001 --json
    """
    from pipeline.history import employee_history, format_employee_history

    found = employee_history(out_dir, employee_id.strip())
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        click.echo(format_employee_history(found, lang))
    sys.exit(0 if found["runs"] else 1)


@main.command("runs")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("--period", help="Only the runs of this period (2026-10, 2026-Q3, ...).")
@click.option("--json", "as_json", is_flag=True, help="The run log as JSON on stdout.")
@LANG
def runs_command(out_dir: Path, period: str | None, as_json: bool, lang: str) -> None:
    """The run log of OUT (from OUT/history.sqlite): every run, oldest first, with its kind,
    status, exit code, who ran it, how many it scored, the run it replaced, and which run is
    the current result of its period.

    \b
    Examples:
      kpi runs output
      kpi runs output --period 2026-10 --json
    """
    from pipeline.batch import check_period
    from pipeline.history import format_run_log, run_log

    runs = run_log(out_dir, check_period(period).text if period else None)
    if as_json:
        click.echo(json.dumps(runs, ensure_ascii=False, indent=2))
    else:
        click.echo(format_run_log(runs, lang))


@main.command("targets")
@click.option("--history", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The output folder holding history.sqlite (kpi run --out).")
@click.option("--for", "period", required=True, help="The period to propose targets for: 2027-01, 2027-Q1, ...")
@click.option("--window", type=click.IntRange(1, 120), default=12, show_default=True,
              help="How many earlier periods of the same length to use.")
@click.option("--method", type=click.Choice(["percentile", "growth"]), default=None,
              help="percentile (default): values reached by 80/50/20% of employees; growth: mean of the last "
                   "3 periods × (1 + g).")
@click.option("--growth", type=float, default=None, help="g for --method growth, e.g. 0.2 (implies growth).")
@click.option("--same-period-last-year", "same_period", is_flag=True,
              help="Use the same period one year before instead of the window.")
@click.option("--indicators", "library", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The indicator library (units, directions); default: the one the latest run read.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The agreements file to write (default: OUT/targets-<P>.xlsx).")
@LANG
def targets_command(out_dir: Path, period: str, window: int, method: str | None, growth: float | None,
                    same_period: bool, library: Path | None, out_path: Path | None, lang: str) -> None:
    """Propose next period's base / target / stretch from the results history, as a filled
    agreements workbook (岗位指标 RoleKPIs, 个人指标 EmployeeKPIs) with a 依据 Basis column, for HR
    to review and then put in the inbox.

    Exit 1 when nothing could be proposed (no history).

    \b
    Examples:
      kpi targets --history output --for 2027-01
      kpi targets --history output --for 2027-Q1 --window 4
      kpi targets --history output --for 2027-01 --method growth --growth 0.2
      kpi targets --history output --for 2027-01 --same-period-last-year
    """
    from pipeline.batch import check_period
    from pipeline.targets import NoHistory, propose_targets

    scored = check_period(period)
    if method == "percentile" and growth is not None:
        raise click.UsageError("--growth goes with --method growth")
    method = method or ("growth" if growth is not None else "percentile")
    try:
        proposal = propose_targets(out_dir, scored, window=window, method=method, growth=growth or 0.0,
                                   same_period=same_period, out_path=out_path, library=library)
    except NoHistory as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(1)
    click.echo(say(f"已写入 {proposal.path}:岗位指标 {proposal.role_rows} 行、个人指标 {proposal.personal_rows} 行;"
                   f"{proposal.proposed} 行由历史提出,{proposal.kept} 行沿用最近协议。请核对“依据”列后放入收件箱。",
                   f"Wrote {proposal.path}: {plural(proposal.role_rows, 'role row')}, "
                   f"{plural(proposal.personal_rows, 'personal row')}; {proposal.proposed} proposed from history, "
                   f"{proposal.kept} kept from the latest agreement. Review the Basis column, then put it in the inbox.",
                   lang))


@main.group("keys")
def keys_group() -> None:
    """Signing keys for the audit manifest (Ed25519). 审计清单的签名密钥。

    \b
    Example:  kpi keys new ~/.kpi     # then give ~/.kpi/kpi.pub to the auditor
    """


@keys_group.command("new")
@click.argument("folder", type=click.Path(path_type=Path))
@LANG
def keys_new_command(folder: Path, lang: str) -> None:
    """Write a new key pair into FOLDER: kpi.key (private, readable by you alone) and kpi.pub
    (public). Existing keys are never overwritten (exit 2).

    \b
    Sign a period with the private key:   kpi run inbox/ --period 2026-10 --sign-key FOLDER/kpi.key
    Give the public key to the auditor:   kpi verify output/2026-10 --public-key kpi.pub
    """
    from pipeline.signing import SigningError, fingerprint, load_public_key, new_keys

    try:
        private_path, public_path = new_keys(folder)
    except SigningError as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    click.echo(say(f"私钥(仅本人可读,请妥善保管,勿放入输出文件夹):{private_path}",
                    f"Private key (readable by you alone; keep it safe, never in the output folder): {private_path}",
                    lang))
    click.echo(say(f"公钥(交给审计人员,与输出文件夹分开保存):{public_path}",
                    f"Public key (give it to the auditor, kept apart from the output folder): {public_path}", lang))
    click.echo(say("公钥指纹", "Public key fingerprint", lang) + f": {fingerprint(load_public_key(public_path))}")


def entry() -> None:
    """The `kpi` command: `main`, then out of the process without tearing the interpreter down.

    After a batch, Python would free its hundreds of MB of frames one object at a time before
    exiting (0.25 s at 10,000 employees). Every output file is closed and the lock released by
    then, so, as mypy does, the command flushes its streams and leaves at once.
    """
    import os

    code: str | int | None
    try:
        signals.install()
        main(standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt as exc:  # Ctrl-C before or after a command ran (the guard covers the commands)
        code = getattr(exc, "exit_code", 130)
    except Exception as exc:  # escaped before a command ran: still one line, never a traceback
        report = guard.write_crash_report(exc, sys.argv[1:])
        guard.echo_line(guard.failure_line(exc, command="", output=None, report=report, lang=guard.lang_of(sys.argv[1:])))
        code = guard.EXIT_ENVIRONMENT
    signals.ignore()  # leaving now: nothing left to interrupt
    if code is None:
        code = 0
    elif not isinstance(code, int):  # what sys.exit("message") would do
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a reader that went away (`kpi validate | head`) is no reason for a traceback
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
