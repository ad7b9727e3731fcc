"""`make bench`: the monthly batch against its floor, on a generated company.

    python benchmarks/bench.py [--employees 10000 30000 ...] [--jobs N] [--keep DIR]
                               [--repeat R] [--no-floor] [--profile]

For each size: generate the company (timed on its own, not part of the batch), run the real
`kpi run INBOX --period P --json` in a subprocess (per-stage seconds from the batch's own
clock, wall clock from outside, peak memory of the process tree), then measure the floor in
the same run with plain library calls in subprocesses (`floor.py`): reading the same inputs
(fastexcel if importable, else python-calamine), xlsxwriter writing a Details sheet of the
same rows, and xlsxwriter writing the same number of employee sheets into the same number of
workbooks over the same number of processes. Prints a table and a Markdown block to paste
into benchmarks/RESULTS.md (nothing is written there automatically).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("read", "validate", "score", "history", "write", "manifest")


# ---------------------------------------------------------------------------- subprocesses

def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _TreeSampler(threading.Thread):
    """Samples the summed PSS of a process and its descendants (Linux); keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        if not os.path.exists("/proc/self/smaps_rollup"):
            return
        while not self.done.wait(self.interval):
            total = sum(_pss_kb(p) for p in _descendants(self.pid))
            self.peak_kb = max(self.peak_kb, total)


def run_measured(args: list[str], *, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run a command; its wall seconds, exit code, stdout, and peak memory from outside.

    `maxrss_mb`: the largest resident set of the process or any of its descendants (wait4's
    rusage, what /usr/bin/time -v reports). `tree_pss_mb`: the peak of the summed proportional
    set size of the whole process tree, sampled every 0.25 s (shared pages counted once).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, cwd=cwd, env=env)
        sampler = _TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    scale = 1024 if sys.platform.startswith("linux") else 1024 * 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return {"seconds": wall, "exit_code": process.returncode, "stdout": stdout, "stderr": stderr,
            "maxrss_mb": usage.ru_maxrss / scale, "tree_pss_mb": sampler.peak_kb / 1024}


def _json_out(result: dict, what: str) -> dict:
    text = result["stdout"].strip()
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        sys.stderr.write(f"{what}: could not parse its output:\n{result['stdout'][-2000:]}\n{result['stderr'][-4000:]}\n")
        raise


def _python() -> str:
    return sys.executable


# ---------------------------------------------------------------------------- one size

def generate(inbox: Path, args, employees: int) -> dict:
    command = [_python(), str(HERE / "generate.py"), str(inbox), "--employees", str(employees),
               "--seed", str(args.seed), "--actual-files", str(args.actual_files), "--period", args.period,
               "--indicators", str(args.indicators)]
    result = run_measured(command)
    if result["exit_code"] != 0:
        raise SystemExit(f"generating the company failed:\n{result['stderr'][-4000:]}")
    facts = _json_out(result, "generate")
    facts["wall"] = result["seconds"]
    return facts


def run_batch(inbox: Path, out: Path, args) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [_python(), "-c", "from pipeline.cli import entry; entry()", "run", str(inbox), "--period", args.period,
               "--out", str(out), "--json"]
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    result = run_measured(command)
    if result["exit_code"] not in (0, 1):
        raise SystemExit(f"kpi run failed (exit {result['exit_code']}):\n{result['stderr'][-4000:]}")
    summary = _json_out(result, "kpi run")
    seconds = summary.get("seconds", {})
    period_dir = out / args.period
    return {"wall": result["seconds"], "exit_code": result["exit_code"], "stages": seconds,
            "maxrss_mb": result["maxrss_mb"], "tree_pss_mb": result["tree_pss_mb"],
            "scored": summary.get("scored"), "unscored": len(summary.get("unscored", [])),
            "warnings": summary.get("warnings"), "errors": len(summary.get("errors", [])),
            "outputs": _outputs(period_dir), "stderr": result["stderr"][-2000:]}


_SHEET = re.compile(rb"<sheet ")


def _outputs(period_dir: Path) -> dict:
    """What the batch wrote: workbooks, employee sheets per department/team workbook, Details rows."""
    books = sorted((period_dir / "departments").rglob("*.xlsx")) if (period_dir / "departments").exists() else []
    counts = []
    for path in books:
        with zipfile.ZipFile(path) as archive:
            sheets = len(_SHEET.findall(archive.read("xl/workbook.xml")))
        counts.append(max(0, sheets - 1))  # all but the 汇总 Summary sheet
    detail_rows = None
    manifest = period_dir / "audit" / "manifest.json"
    if manifest.exists():
        try:
            detail_rows = json.loads(manifest.read_text("utf-8")).get("counts", {}).get("detail_rows")
        except ValueError:
            pass
    size = sum(p.stat().st_size for p in period_dir.rglob("*") if p.is_file()) if period_dir.exists() else 0
    return {"workbooks": len(books), "sheet_counts": counts, "employee_sheets": sum(counts),
            "detail_rows": detail_rows, "bytes": size,
            "files": sum(1 for p in period_dir.rglob("*") if p.is_file()) if period_dir.exists() else 0}


def measure_floor(inbox: Path, work: Path, batch: dict, facts: dict, jobs: int) -> dict:
    floor_py = str(HERE / "floor.py")
    read = run_measured([_python(), floor_py, "read", str(inbox)])
    if read["exit_code"]:
        raise SystemExit(f"floor read failed:\n{read['stderr'][-4000:]}")
    read_json = _json_out(read, "floor read")
    rows = batch["outputs"]["detail_rows"] or facts["detail_rows"]
    details = run_measured([_python(), floor_py, "details", str(rows), str(work / "floor-details.xlsx")])
    if details["exit_code"]:
        raise SystemExit(f"floor details failed:\n{details['stderr'][-4000:]}")
    counts = batch["outputs"]["sheet_counts"] or [facts["employees"]]
    sheets_dir = work / "floor-sheets"
    sheets = run_measured([_python(), floor_py, "sheets", str(sheets_dir), str(jobs), *map(str, counts)])
    if sheets["exit_code"]:
        raise SystemExit(f"floor sheets failed:\n{sheets['stderr'][-4000:]}")
    shutil.rmtree(sheets_dir, ignore_errors=True)
    (work / "floor-details.xlsx").unlink(missing_ok=True)
    details_json, sheets_json = _json_out(details, "floor details"), _json_out(sheets, "floor sheets")
    return {
        "read": read_json["floor"]["seconds"], "reader": read_json["floor"]["reader"],
        "read_calamine": read_json["calamine"]["seconds"],
        "read_fastexcel": read_json.get("fastexcel", {}).get("seconds"),
        "details": details_json["seconds"], "details_rows": details_json["rows"],
        "sheets": sheets_json["seconds"], "sheets_count": sheets_json["sheets"],
        "sheets_workbooks": sheets_json["workbooks"], "sheets_jobs": sheets_json["jobs"],
        "maxrss_mb": max(read["maxrss_mb"], details["maxrss_mb"], sheets["maxrss_mb"]),
    }


def profile_batch(inbox: Path, out: Path, args, keep: Path) -> str:
    """cProfile of one whole batch in one process (--jobs 1), top lines by cumulative time."""
    shutil.rmtree(out, ignore_errors=True)
    stats = keep / "batch.prof"
    code = (
        "import cProfile, pstats, sys\n"
        "from pathlib import Path\n"
        "from pipeline.batch import run_batch\n"
        "from pipeline.policy import load_policy\n"
        "inbox, period, out, stats = sys.argv[1:5]\n"
        "cProfile.run('run_batch(Path(inbox), period, Path(out), load_policy(), jobs=1)', stats)\n"
        "pstats.Stats(stats).sort_stats('cumulative').print_stats(40)\n"
    )
    result = run_measured([_python(), "-c", code, str(inbox), args.period, str(out), str(stats)])
    return result["stdout"] + result["stderr"][-2000:]


# ---------------------------------------------------------------------------- report

def _ratio(batch: float | None, floor: float | None) -> str:
    if not batch or not floor:
        return "—"
    return f"{batch / floor:.2f}×"


def _s(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def rows_for(run: dict) -> list[tuple[str, str, str, str]]:
    b, f = run["batch"], run.get("floor")
    st = b["stages"]
    total = sum(st.get(s, 0.0) for s in STAGES)
    floor_read = f["read"] if f else None
    floor_write = (f["details"] + f["sheets"]) if f else None
    floor_total = (floor_read + floor_write) if f else None
    rows = [
        ("read", _s(st.get("read")), _s(floor_read), _ratio(st.get("read"), floor_read)),
        ("validate", _s(st.get("validate")), "—", ""),
        ("score", _s(st.get("score")), "—", ""),
        ("write", _s(st.get("write")), _s(floor_write), _ratio(st.get("write"), floor_write)),
        ("  floor: Details sheet", "", _s(f["details"]) if f else "—", ""),
        ("  floor: employee sheets", "", _s(f["sheets"]) if f else "—", ""),
        ("manifest", _s(st.get("manifest")), "—", ""),
        # the results history (read back for trends and streaks, then the run's one transaction)
        ("history", _s(st.get("history")), "—", f"{st.get('history', 0.0) / total:.1%} of stages" if total else ""),
        ("stages total", _s(total), _s(floor_total), _ratio(total, floor_total)),
        ("kpi run wall clock", _s(b["wall"]), _s(floor_total), _ratio(b["wall"], floor_total)),
    ]
    return rows


def print_report(runs: list[dict], args) -> None:
    for run in runs:
        b, f, g = run["batch"], run.get("floor"), run["facts"]
        n = g["employees"]
        print()
        print(f"== {n:,} employees · {g['departments']} departments ({g['departments_over_200']} above "
              f"200) · {g['detail_rows']:,} detail rows · {g['actual_rows']:,} actuals · "
              f"{g['rating_rows']:,} ratings · {len(g['files'])} input files, {g['bytes'] / 1e6:.1f} MB")
        print(f"   generated in {g['wall']:.1f} s (not part of the batch)"
              + (f" · best of {run['repeat']} runs" if run["repeat"] > 1 else ""))
        print(f"   kpi run: exit {b['exit_code']}, scored {b['scored']}, unscored {b['unscored']}, "
              f"errors {b['errors']}, warnings {b['warnings']}; wrote {b['outputs']['files']} files "
              f"({b['outputs']['workbooks']} department/team workbooks, {b['outputs']['employee_sheets']:,} "
              f"employee sheets, {b['outputs']['bytes'] / 1e6:.0f} MB)")
        width = max(len(r[0]) for r in rows_for(run))
        print(f"   {'stage':<{width}}  {'batch s':>9}  {'floor s':>9}  {'batch/floor':>11}")
        for stage, batch_s, floor_s, ratio in rows_for(run):
            print(f"   {stage:<{width}}  {batch_s:>9}  {floor_s:>9}  {ratio:>11}")
        print(f"   peak memory: {b['maxrss_mb']:.0f} MB largest process (maxrss), "
              f"{b['tree_pss_mb']:.0f} MB whole process tree (PSS, sampled)")
        print(f"   throughput: {n / b['wall']:.0f} employees/s (kpi run wall clock)")
        if f:
            also = "" if f["reader"] == "python-calamine" else f" (python-calamine {f['read_calamine']:.2f} s)"
            print(f"   floor reader: {f['reader']}{also}; "
                  f"employee sheets: {f['sheets_count']:,} in {f['sheets_workbooks']} workbooks, "
                  f"{f['sheets_jobs']} processes; Details: {f['details_rows']:,} rows")
    print()
    print("---- Markdown for benchmarks/RESULTS.md ----")
    print(markdown(runs, args))


def machine() -> str:
    cores = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            total_kb = int(handle.readline().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip() + ", "
                    break
    except OSError:
        pass
    return f"{cpu}{cores} cores{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def markdown(runs: list[dict], args) -> str:
    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    lines = [f"### {dt.date.today().isoformat()} · {machine()}", "",
             f"xlsxwriter {version('xlsxwriter')}, python-calamine {version('python-calamine')}, "
             f"fastexcel {version('fastexcel')}, pandas {version('pandas')}, pandera {version('pandera')}; "
             f"`--jobs {args.jobs or os.cpu_count()}`." + (f" Best of {args.repeat} runs." if args.repeat > 1 else ""),
             ""]
    for run in runs:
        b, f, g = run["batch"], run.get("floor"), run["facts"]
        lines += [f"**{g['employees']:,} employees** ({g['detail_rows']:,} detail rows, {g['actual_rows']:,} actuals "
                  f"in {sum(1 for k in g['files'] if k.startswith('actuals'))} files, {g['rating_rows']:,} ratings; "
                  f"{b['outputs']['workbooks']} department/team workbooks; exit {b['exit_code']}); generated in "
                  f"{g['wall']:.1f} s", "",
                  "| stage | batch s | floor s | batch / floor |", "|---|---:|---:|---:|"]
        for stage, batch_s, floor_s, ratio in rows_for(run):
            lines.append(f"| {stage.strip()} | {batch_s} | {floor_s} | {ratio} |")
        lines += ["", f"Peak memory {b['maxrss_mb']:.0f} MB (largest process), {b['tree_pss_mb']:.0f} MB (process "
                  f"tree PSS); {g['employees'] / b['wall']:.0f} employees/s."
                  + (f" Floor read with {f['reader']}" + ("" if f["reader"] == "python-calamine" else
                                                          f" (python-calamine: {f['read_calamine']:.2f} s)") + "."
                     if f else ""),
                  ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def bench_size(employees: int, args, root: Path) -> dict:
    work = root / f"n{employees}"
    inbox, out = work / "inbox", work / "out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"[{employees:,}] generating…", flush=True)
    facts = generate(inbox, args, employees)
    print(f"[{employees:,}] generated in {facts['wall']:.1f} s; running kpi run…", flush=True)
    best = None
    floors = []
    for attempt in range(args.repeat):
        batch = run_batch(inbox, out, args)
        print(f"[{employees:,}] run {attempt + 1}: kpi run {batch['wall']:.1f} s "
              f"(stages {json.dumps({k: round(v, 2) for k, v in batch['stages'].items()})}), "
              f"peak {batch['maxrss_mb']:.0f} MB", flush=True)
        if best is None or batch["wall"] < best["wall"]:
            best = batch
        if not args.no_floor:
            floor = measure_floor(inbox, work, batch, facts, args.jobs or os.cpu_count() or 1)
            print(f"[{employees:,}] run {attempt + 1}: floor read {floor['read']:.2f} s ({floor['reader']}), "
                  f"Details {floor['details']:.2f} s, employee sheets {floor['sheets']:.2f} s", flush=True)
            floors.append(floor)
    floor = None
    if floors:  # best of each part
        floor = dict(floors[0])
        for key in ("read", "read_calamine", "details", "sheets", "maxrss_mb"):
            floor[key] = min(f[key] for f in floors)
        if floors[0]["read_fastexcel"] is not None:
            floor["read_fastexcel"] = min(f["read_fastexcel"] for f in floors)
    run = {"facts": facts, "batch": best, "floor": floor, "repeat": args.repeat}
    if args.profile:
        print(f"[{employees:,}] profiling one batch with --jobs 1…", flush=True)
        run["profile"] = profile_batch(inbox, out, args, work)
        print(run["profile"])
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, nargs="+", default=[10_000], help="company sizes (default 10000)")
    parser.add_argument("--jobs", type=int, default=None, help="kpi run --jobs (default: the batch's default, cores)")
    parser.add_argument("--keep", type=Path, default=None, help="keep inputs and outputs in DIR (else a temp folder)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the best of each is reported")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurement")
    parser.add_argument("--profile", action="store_true", help="also cProfile one batch (--jobs 1) per size")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures to this JSON file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--indicators", type=int, default=8, help="indicators per employee (largest role sets)")
    parser.add_argument("--actual-files", type=int, default=4)
    parser.add_argument("--period", default="2026-10")
    args = parser.parse_args(argv)
    args.repeat = max(1, args.repeat)

    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"benchmark folder: {root}; machine: {machine()}", flush=True)
    runs = []
    try:
        for employees in args.employees:
            runs.append(bench_size(employees, args, root))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_report(runs, args)
    if args.json:
        args.json.write_text(json.dumps(runs, ensure_ascii=False, indent=2, default=str), "utf-8")


if __name__ == "__main__":
    main()
