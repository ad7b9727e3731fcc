"""What `kpi` says when the machine, not the inputs, stops a command: one line, never a traceback.

HR runs `kpi` under deadline, from cron, on shared folders. A full disk, a read-only share, a
worker the system killed or a bug must end in one line that names the path and says what to do,
with exit code 3; the traceback goes into a crash report file for whoever maintains the tool.
"""

from __future__ import annotations

import errno
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.findings import BilingualError
from pipeline.texts import say

EXIT_ENVIRONMENT = 3

EXIT_CODES_HELP = """\b
退出码 Exit codes:
  0  done, nothing wrong
  1  done, but something needs attention (what, each command's help says)
  2  usage error or unreadable input: the message says what to change
  3  the environment failed (disk full, no permission, read-only or missing folder, a worker
     process died, an unexpected error): one line names the path and where a crash report
     with the details was written
  130 / 143  stopped by Ctrl-C / SIGTERM (unfinished output is removed)"""


class EnvironmentFailure(BilingualError):
    """The machine stopped the command (a worker died, memory ran out): exit code 3."""


# errno -> (zh what, en what, zh fix, en fix); {path} is the path the system refused.
_FIX_FOLDER = ("请检查该文件或文件夹的权限,或用 --out 选择另一个文件夹",
               "check the permissions of that file or folder, or choose another folder with --out")
_OS_ERRORS = {
    errno.ENOSPC: ("磁盘已满,无法写入 {path}", "Disk full: could not write {path}",
                   "请腾出空间后重新运行", "free some space and run again"),
    errno.EDQUOT: ("磁盘配额已用完,无法写入 {path}", "Disk quota exceeded: could not write {path}",
                   "请腾出空间或申请更多配额后重新运行", "free some space or ask for a larger quota, then run again"),
    errno.EROFS: ("{path} 在只读的文件系统上,无法写入", "Read-only file system: could not write {path}",
                  "请用 --out 选择一个可写的文件夹", "choose a writable folder with --out"),
    errno.EACCES: ("没有权限访问 {path}", "Permission denied: {path}", *_FIX_FOLDER),
    errno.EPERM: ("不允许对 {path} 进行此操作", "Operation not permitted on {path}", *_FIX_FOLDER),
    errno.ENOENT: ("{path} 不存在", "No such file or folder: {path}",
                   "请确认该文件夹存在且可以访问(是否被删除、移走或断开了?)后重新运行",
                   "check that its folder exists and can be reached (removed, moved, disconnected?), then run again"),
    errno.ENOTDIR: ("{path} 中有一部分是文件而不是文件夹", "A part of {path} is a file, not a folder",
                    "请选择另一个文件夹", "choose another folder"),
    errno.EISDIR: ("{path} 是文件夹,不是文件", "{path} is a folder, not a file", "请给出文件的路径",
                   "give the path of a file"),
    errno.EEXIST: ("{path} 已存在,无法创建", "{path} already exists, so it could not be created",
                   "请移走它或选择另一个位置", "move it away or choose another place"),
    errno.EMFILE: ("打开的文件过多,无法打开 {path}", "Too many open files: could not open {path}",
                   "请减少 --jobs 或提高系统的打开文件数上限", "use fewer --jobs or raise the open-files limit"),
    errno.ENFILE: ("系统打开的文件过多,无法打开 {path}", "Too many open files on this system: could not open {path}",
                   "请稍后重新运行", "run again later"),
    errno.ENOMEM: ("内存不足,无法处理 {path}", "Out of memory while handling {path}",
                   "请减少 --jobs 或换一台内存更大的机器", "use fewer --jobs or a machine with more memory"),
    errno.EIO: ("读写 {path} 时出错(磁盘或网络共享故障)", "Input/output error on {path} (a failing disk or network share)",
                "请检查磁盘或网络连接后重新运行", "check the disk or the network connection and run again"),
}


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: itself, its cause, or one it wraps (xlsxwriter's FileCreateError
    holds the OSError as its argument; a worker's arrives as itself). Only causes, not the
    context: an error raised while handling an OSError is not the OSError's fault."""
    seen: set[int] = set()
    stack: list = [exc]
    while stack:
        e = stack.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno is not None:
            return e
        stack.append(e.__cause__)
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return None


def _paths(error: OSError, output: Path | None) -> tuple[str, str]:
    """(zh, en) naming the path the system refused; the command's output folder when the
    system did not say (a write that fails for a full disk names no file)."""
    names = [str(p) for p in (error.filename, error.filename2) if p not in (None, "")]
    if names:
        if len(names) == 2:
            return f"{names[0]} → {names[1]}", f"{names[0]} -> {names[1]}"
        return names[0], names[0]
    if output is not None:
        return f"{output}(输出位置)", f"{output} (the output)"
    return "(路径未知)", "(path unknown)"


def _report_words(report: Path | None) -> tuple[str, str]:
    if report is None:
        return "未能写入崩溃报告", "no crash report could be written"
    return f"崩溃报告:{report}", f"crash report: {report}"


def failure_line(exc: BaseException, *, command: str, output: Path | None, report: Path | None,
                 lang: str) -> str:
    """One line, in both languages unless `lang` is en: what failed, which path, what to do,
    and where the crash report is. Nothing of the exception's own (foreign) text is shown."""
    report_zh, report_en = _report_words(report)
    command = f"kpi {command}".strip()
    error = os_error_in(exc)
    if error is not None:
        number = -1 if error.errno is None else error.errno  # -1: no errno, so no entry below
        code = errno.errorcode.get(number, str(error.errno))
        default = (f"系统拒绝了对 {{path}} 的操作({code})", f"The system refused an operation on {{path}} ({code})",
                   "请检查后重新运行", "check it and run again")
        what_zh, what_en, fix_zh, fix_en = _OS_ERRORS.get(number, default)
        path_zh, path_en = _paths(error, output)
        zh = f"{command} 已停止:{what_zh.format(path=path_zh)}。{fix_zh}。({report_zh})"
        en = f"{command} stopped. {what_en.format(path=path_en)}; {fix_en}. ({report_en})"
    elif isinstance(exc, EnvironmentFailure):
        zh = f"{command} 已停止:{exc.zh}({report_zh})"
        en = f"{command} stopped: {exc.en} ({report_en})"
    elif isinstance(exc, MemoryError):
        zh = f"{command} 已停止:内存不足。请减少 --jobs 或换一台内存更大的机器。({report_zh})"
        en = f"{command} stopped: out of memory. Use fewer --jobs or a machine with more memory. ({report_en})"
    else:
        kind = type(exc).__name__
        where_zh = f"详细信息见崩溃报告 {report},请把它发给维护者" if report else "未能写入崩溃报告"
        where_en = (f"the details are in the crash report {report}: please send it to the maintainers"
                    if report else "no crash report could be written")
        zh = f"{command} 意外出错({kind}),已停止;{where_zh}。"
        en = f"{command} stopped on an unexpected error ({kind}); {where_en}."
    return say(zh, en, lang)


def stopped_line(signal_name: str, *, command: str, cleaned: bool, lang: str) -> str:
    """The one line for Ctrl-C or SIGTERM."""
    how = "Ctrl-C" if signal_name == "SIGINT" else signal_name
    command = f"kpi {command}".strip()
    zh = f"{command} 已停止(收到 {how})" + (",未完成的输出已删除。" if cleaned else "。")
    en = f"{command} stopped ({how} received)" + ("; unfinished output was removed." if cleaned else ".")
    return say(zh, en, lang)


# ------------------------------------------------------------------------------ crash report

def report_folders() -> list[Path]:
    """Where crash reports go, in order of preference: the user's state folder
    ($XDG_STATE_HOME/kpi, else ~/.local/state/kpi), then the system's temporary folder."""
    folders = []
    try:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        folders.append(Path(state) / "kpi")
    except (RuntimeError, KeyError, OSError):  # no home folder
        pass
    try:
        folders.append(Path(tempfile.gettempdir()))
    except (OSError, RuntimeError):  # pragma: no cover - no usable temporary folder at all
        pass
    return folders


def _versions() -> str:
    from importlib import metadata

    from pipeline import __version__

    parts = [f"kpi {__version__}", f"Python {platform.python_version()} ({platform.python_implementation()})",
             platform.platform()]
    for name in ("pandas", "numpy", "openpyxl", "xlsxwriter", "python-calamine", "fastexcel", "click"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except Exception:  # not installed, or broken metadata: the report goes on without it
            pass
    return "; ".join(parts)


def report_text(exc: BaseException, argv: list[str]) -> str:
    lines = [
        "kpi crash report",
        f"time (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"command: {shlex.join(['kpi', *argv])}",
        f"pid: {os.getpid()}",
    ]
    for label, value in (("working folder", os.getcwd), ("versions", _versions)):
        try:
            lines.append(f"{label}: {value()}")
        except Exception:  # the report must be written even if one detail cannot be had
            lines.append(f"{label}: (unknown)")
    lines.append("")
    lines.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def write_crash_report(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback, the command line and the versions; the file's path, or None when
    no folder would take it. Never raises: a full disk must not turn into a second crash."""
    try:
        text = report_text(exc, argv)
    except Exception:
        text = f"kpi crash report\ncommand: kpi {' '.join(argv)}\n{type(exc).__name__}\n"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for folder in report_folders():
        prefix = "crash" if folder.name == "kpi" else "kpi-crash"
        path = folder / f"{prefix}-{stamp}-{os.getpid()}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
            return path
        except Exception:  # full, read-only, not a folder: try the next place
            try:
                path.unlink(missing_ok=True)
            except Exception:
                pass
    return None


def lang_of(argv: list[str]) -> str:
    """en when the command line asks for English only (read before click has parsed it)."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return "zh"


def echo_line(line: str) -> None:
    """Print to stderr; a closed or broken stderr is not a reason for a traceback."""
    try:
        print(line, file=sys.stderr, flush=True)
    except Exception:
        pass
