"""The `kpi` command: a thin click layer over Python functions that do the work."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path

import click

from pipeline import __version__, guard, signals
from pipeline.findings import BilingualError, Finding, sort_findings
from pipeline.policy import PolicyError, load_policy
from pipeline.signals import stop_on_signals

LANG = click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                    help="zh: Chinese with English beside it; en: English only.")
POLICY = click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      help="Policy YAML (defaults: config/policy.yaml shipped with the package).")


def _say(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else f"{zh} {en}"


def _policy(path: Path | None, lang: str):
    try:
        return load_policy(path)
    except PolicyError as exc:
        click.echo(exc.message("en" if lang == "en" else "both"), err=True)
        sys.exit(2)


def format_findings(findings: list[Finding], lang: str) -> str:
    """Findings grouped by file, one line each: cell, severity, message (both languages by default)."""
    lines: list[str] = []
    current = None
    for f in sort_findings(findings):
        file = f.file or _say("(收件箱)", "(inbox)", lang)
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


class _LazyGroup(click.Group):
    """Commands whose modules are imported only when used: `kpi run` need not load openpyxl.

    Also the one place every command passes through: each gets the exit codes in its help, and
    whatever escapes a command ends as one line and an exit code (`_guarded`), never a traceback.
    """

    lazy = {"diff": ("pipeline.diff", "diff_command"), "verify": ("pipeline.audit", "verify_command"),
            "trace": ("pipeline.trace", "trace_command")}

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
        ctx = super().make_context(info_name, args, parent=parent, **extra)
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
        guard.echo_line(exc.message("en" if lang == "en" else "both"))
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def other_periods_line(other: list[Finding], lang: str) -> str:
    """"N more findings concern other periods (2026-09)": said once, not counted as this run's."""
    periods = sorted({f.period for f in other})
    if len(other) == 1:
        en = f"1 more finding concerns another period ({', '.join(periods)})"
    else:
        en = f"{len(other)} more findings concern other periods ({', '.join(periods)})"
    return _say(f"另有 {len(other)} 条问题属于其他考核周期 ({'、'.join(periods)})", en, lang)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=guard.EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="kpi")
def main() -> None:
    """KPI scorecards from the Excel templates HR already fills.

    \b
    Typical month:
      kpi templates                       # blank templates (once)
      kpi validate inbox/                 # check HR's files, cell by cell
      kpi run inbox/ --period 2026-10     # score everyone, write output/2026-10/
      kpi verify output/2026-10           # prove the files are the ones produced
    Try it now:  kpi demo example
    """


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("workbooks/templates"), show_default=True, help="Folder for the templates.")
def templates(out_dir: Path) -> None:
    """Write the seven blank templates (roster, indicators, agreements, actuals, ratings, weights,
    dept_targets) into OUT.

    \b
    Example:  kpi templates --out ~/hr/templates
    """
    from pipeline.templates import write_all_templates

    for path in write_all_templates(out_dir):
        click.echo(str(path))


def validate_inbox(inbox: Path, policy, period: str | None = None):
    """Read and validate every workbook in `inbox`; returns the Inputs with all findings."""
    from pipeline.reader import read_inbox
    from pipeline.validate import validate

    return validate(read_inbox(inbox, policy.limits), policy, period)


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
        period = check_period(period) if period else None
    except BatchError as exc:
        click.echo(exc.message(lang), err=True)
        sys.exit(2)
    inputs = validate_inbox(inbox, policy, period)
    findings, other = inputs.findings, []
    if period:  # what concerns rows of other periods is listed, labelled, and does not fail the check
        from pipeline.batch import other_period_finding, split_by_period

        findings, other = split_by_period(findings, period)
    errors = sum(f.is_error for f in findings)
    listed = findings + [other_period_finding(f, period) for f in other]
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in sort_findings(listed)], ensure_ascii=False, indent=2))
    else:
        files = len(inputs.workbooks)
        if listed:
            click.echo(format_findings(listed, lang))
            click.echo("")
        click.echo(_say(f"已检查 {files} 个文件:{errors} 个错误,{len(findings) - errors} 个警告。",
                        f"Checked {_plural(files, 'file')}: {_plural(errors, 'error')}, "
                        f"{_plural(len(findings) - errors, 'warning')}.", lang))
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


# Warnings about a whole input file that the run's console names (the others are counted): a
# copy that was ignored, a file that changed while the run read it.
FILE_NOTICES = frozenset({"duplicate_file", "input_changed"})


def print_run_summary(result, lang: str) -> None:
    """One screen: scored, unscored (why), warnings, grade distribution, where the files are."""
    scores = result.scores
    totals = scores.totals
    click.echo(click.style(_say(f"考核周期 {result.period}", f"Period {result.period}", lang), bold=True))
    click.echo(_say(f"  已评分 {len(totals)} 人,未评分 {len(scores.unscored)} 人",
                    f"  scored {len(totals)}, not scored {len(scores.unscored)}", lang))
    grades = Counter(totals["grade"])
    if grades:
        order = [g.grade for g in result.policy_grades] or sorted(grades)
        click.echo(_say("  等级分布", "  grades", lang) + ": " + "  ".join(f"{g}={grades.get(g, 0)}" for g in order))
    errors, warnings = len(result.errors), len(result.warnings)
    click.echo(_say(f"  错误 {errors} 个,警告 {warnings} 个", f"  errors {errors}, warnings {warnings}", lang))
    for f in result.warnings:
        if f.rule in FILE_NOTICES:
            click.echo(f"    ! {f.file}: {f.message_en if lang == 'en' else f'{f.message_zh} {f.message_en}'}")
    if result.other_periods:
        click.echo("  " + other_periods_line(result.other_periods, lang))
    for item in scores.unscored.head(10).itertuples(index=False):
        reason = item.reason_en if lang == "en" else item.reason_zh
        where = f"  [{item.where}]" if item.where else ""
        click.echo(f"    - {item.employee_id} {item.name if isinstance(item.name, str) else ''}: {reason}{where}")
    if len(scores.unscored) > 10:
        click.echo(_say(f"    ……另有 {len(scores.unscored) - 10} 人,见 summary.xlsx", f"    ... {len(scores.unscored) - 10} more in summary.xlsx", lang))
    click.echo(_say(f"  输出: {result.period_dir}", f"  output: {result.period_dir}", lang))
    for sub in ("departments", "managers", "employees", "summary.xlsx", "errors", "audit/manifest.json"):
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
                per_employee: bool, passwords_file: Path | None, generate_passwords: bool,
                policy_path: Path | None, lang: str) -> None:
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
      KPI_MASTER_PASSWORD=... kpi run inbox/ --period 2026-10 --generate-passwords
    """
    from pipeline.batch import BatchError, run_batch
    from pipeline.distribution import DistributionError

    policy = _policy(policy_path, lang)
    try:
        result = run_batch(inbox, period, out_dir, policy, strict=strict, lang=lang, jobs=jobs,
                           progress_factory=None if as_json else _progress_factory(), per_employee=per_employee,
                           passwords_file=passwords_file, generate_passwords=generate_passwords)
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
                click.echo(f.message("en" if lang == "en" else "both"))
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
    """Write a filled example company (seed 003: 15 sales, 25 R&D, 10 admin) into FOLDER/inbox
    and run the monthly batch on it into FOLDER/output.

    \b
    Example:  kpi demo example && open example/output/2026-10/departments/
    """
    from pipeline.batch import run_batch
    from pipeline.demo import build_demo_inbox

    inbox = folder / "inbox"
    info = build_demo_inbox(inbox)
    click.echo(_say(f"示例公司已写入 {inbox}(含 {len(info['mistakes'])} 处故意的错误)",
                    f"Example company written to {inbox} (with {len(info['mistakes'])} planted mistakes)", lang))
    result = run_batch(inbox, period, folder / "output", load_policy(), lang=lang,
                       progress_factory=_progress_factory())
    print_run_summary(result, lang)
    click.echo("")
    click.echo(_say("打开部门计分卡:", "Open the department scorecards:", lang))
    for path in sorted((result.period_dir / "departments").glob("*.xlsx")):
        click.echo(f"    {path}")
    errors_dir = result.period_dir / "errors"
    if errors_dir.exists():
        click.echo(_say("故意的错误标注在:", "The planted mistakes are marked in:", lang))
        for path in sorted(errors_dir.glob("*.xlsx")):
            click.echo(f"    {path}")


def compute_weights_file(path: Path, policy):
    """Weights (expert scores and AHP) of one weights workbook, with every finding."""
    from pipeline.reader import read_workbook
    from pipeline.validate import validate
    from pipeline.weights import compute_weights, read_ahp_sheets

    workbook = read_workbook(path, path.name, policy.limits)
    if workbook.kind not in (None, "weights") and not workbook.findings:
        from pipeline.findings import finding

        return [], [finding("unknown_kind", file=path.name)]
    inputs = validate([workbook], policy)
    findings = [f for f in inputs.findings if f.rule not in ("missing_input",)]
    if workbook.kind != "weights":
        return [], findings
    experts = inputs.expert_scores
    sheets = read_ahp_sheets(path, workbook.data) if workbook.matrices else []
    results, weight_findings = compute_weights(experts if not experts.empty else None, sheets,
                                               ri_table=policy.ri_table, file=path.name)
    return results, findings + weight_findings


@main.command("weights")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Results as JSON on stdout (SPEC §4 format).")
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
    from pipeline.weights import largest_remainder

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
            figures = {"λmax": r.lambda_max, "CI": r.ci, "RI": r.ri, "CR": r.cr, "Kendall W": r.kendall_w}
            click.echo("  " + "  ".join(f"{k}={v:.4f}" for k, v in figures.items() if v is not None))
        if findings:
            click.echo(format_findings(findings, lang))
        if out_path is not None and results:
            click.echo(str(out_path))
    sys.exit(1 if errors else 0)


def entry() -> None:
    """The `kpi` command: `main`, then out of the process without tearing the interpreter down.

    After a batch, Python would free its hundreds of MB of frames one object at a time before
    exiting (0.25 s at 10,000 employees). Every output file is closed and the lock released by
    then, so, as mypy does, the command flushes its streams and leaves at once.
    """
    import os

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
