"""The audit manifest (`audit/manifest.json`) and `kpi verify`.

The manifest pins what a run read and wrote (SHA-256 of every input and output, the policy
text, the package version), so an auditor can prove months later that a scorecard is the one
the batch produced. It holds no timestamps: the same inputs give a byte-identical manifest.

`verify` fails only on the outputs of the period folder (changed, missing or unexpected files):
those are what the manifest certifies. Inputs are re-hashed too when their recorded path still
exists and reported as `inputs_changed` / `inputs_missing`, without failing, because an inbox is
routinely archived or moved after the batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click

from pipeline.findings import BilingualError

MANIFEST_VERSION = 1
MANIFEST_PATH = "audit/manifest.json"  # relative to the period's output folder
_CHUNK = 1024 * 1024


class ManifestError(BilingualError):
    """No usable manifest in the folder: verify cannot vouch for anything."""

    def __init__(self, path: Any, reason_zh: str, reason_en: str) -> None:
        self.path, self.reason_zh, self.reason_en = str(path), reason_zh, reason_en
        super().__init__(f"无法校验:{self.path}:{reason_zh}", f"Cannot verify: {self.path}: {reason_en}")


def sha256_file(path: Any) -> str:
    """SHA-256 of a file, read in 1 MB chunks so big workbooks do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _as_given(path: Any) -> str:
    return path if isinstance(path, str) else Path(path).as_posix()


def _output_files(outputs_dir: Path) -> list[str]:
    """Every file under the folder, as sorted forward-slash relative paths, minus the manifest."""
    files = []
    for p in outputs_dir.rglob("*"):
        if p.is_file():
            rel = p.relative_to(outputs_dir).as_posix()
            if rel != MANIFEST_PATH:
                files.append(rel)
    return sorted(files)


def build_manifest(*, period: str, inputs: list[dict], policy_text: str, outputs_dir: Path,
                   counts: dict, warnings: list[dict], package_version: str,
                   plain_hashes: dict[str, str] | None = None) -> dict:
    """The manifest of one run. Inputs are dicts from the caller (path, kind, template_version,
    rows, and the `size` and `sha256` of the bytes the run read); an input given without them
    is hashed here from the file at `path`. An input that could not be read is recorded with
    None for both, never re-read (a run must not fail at its last step on a file it refused)."""
    outputs_dir = Path(outputs_dir)
    input_entries = []
    for item in inputs:
        entry = dict(item)
        entry["path"] = _as_given(item["path"])
        if "sha256" not in item:
            entry["size"], entry["sha256"] = _size_and_hash(Path(item["path"]))
        input_entries.append(entry)
    outputs = [
        {"path": rel, "size": (outputs_dir / rel).stat().st_size,
         "sha256": sha256_file(outputs_dir / rel)}
        for rel in _output_files(outputs_dir)
    ]
    for entry in outputs:  # encrypted files differ on every run (random salt); their content does not
        if plain_hashes and entry["path"] in plain_hashes:
            entry["plain_sha256"] = plain_hashes[entry["path"]]
    return {
        "manifest_version": MANIFEST_VERSION,
        "period": period,
        "package_version": package_version,
        "policy": {"content": policy_text,
                   "sha256": hashlib.sha256(policy_text.encode("utf-8")).hexdigest()},
        "inputs": input_entries,
        "outputs": outputs,
        "counts": counts,
        "warnings": warnings,
    }


def _size_and_hash(path: Path) -> tuple[int | None, str | None]:
    try:
        return path.stat().st_size, sha256_file(path)
    except OSError:
        return None, None


def manifest_bytes(manifest: dict) -> bytes:
    """The canonical serialisation: sorted keys, UTF-8, trailing newline."""
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def write_manifest(outputs_dir: Path, manifest: dict) -> Path:
    """Write `outputs_dir/audit/manifest.json` (bytes, so no platform newline translation)."""
    path = Path(outputs_dir) / MANIFEST_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest_bytes(manifest))
    return path


@dataclass
class VerifyReport:
    """What `verify` found. `ok` depends on the outputs only (see the module docstring)."""

    ok: bool
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    checked: int = 0
    inputs_changed: list[str] = field(default_factory=list)
    inputs_missing: list[str] = field(default_factory=list)
    # With passwords: encrypted files whose decrypted content differs, or that could not be decrypted.
    content_changed: list[str] = field(default_factory=list)
    undecryptable: list[str] = field(default_factory=list)
    decrypted: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def load_manifest(period_dir: Path) -> dict:
    """The manifest of a period folder, checked for shape; ManifestError if absent or broken."""
    period_dir = Path(period_dir)
    path = period_dir / MANIFEST_PATH
    if not period_dir.is_dir():
        raise ManifestError(period_dir, "文件夹不存在(或不是文件夹)。",
                            "no such folder (or not a folder).")
    if not path.is_file():
        raise ManifestError(path, "找不到审计清单(该文件夹不是 `kpi run` 的输出,或清单已被删除)。",
                            "the audit manifest is missing (not a `kpi run` output folder, "
                            "or the manifest was deleted).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(path, f"清单无法解析({exc})。",
                            f"the manifest cannot be parsed ({exc}).") from None
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("path"), str) and isinstance(o.get("sha256"), str)
        for o in outputs
    ):
        raise ManifestError(path, "清单格式不正确(缺少 outputs 列表)。",
                            "the manifest is malformed (no valid outputs list).")
    for entry in outputs:
        rel = PurePosixPath(entry["path"])
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ManifestError(path, f"清单中的路径越出输出文件夹:{entry['path']}",
                                f"a path in the manifest leaves the output folder: {entry['path']}")
    return manifest


def verify(period_dir: Path, passwords: dict[str, str] | None = None) -> VerifyReport:
    """Re-hash every output against the manifest; report changed, missing and unexpected files.

    `passwords` (employee ID -> password): also decrypt every encrypted output and compare its
    content with the manifest's `plain_sha256` (the list of generated passwords with the master
    password from the environment)."""
    period_dir = Path(period_dir)
    manifest = load_manifest(period_dir)
    report = VerifyReport(ok=True)
    listed = set()
    for entry in manifest["outputs"]:
        rel = entry["path"]
        listed.add(rel)
        report.checked += 1
        target = period_dir / rel
        if not target.exists():
            report.missing.append(rel)
        elif not target.is_file() or _hash_or_none(target) != entry["sha256"]:
            report.changed.append(rel)
    report.unexpected = [rel for rel in _output_files(period_dir) if rel not in listed]
    for entry in manifest.get("inputs") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        source = Path(entry["path"])
        if not source.is_file():
            report.inputs_missing.append(entry["path"])
        elif _hash_or_none(source) != entry.get("sha256"):
            report.inputs_changed.append(entry["path"])
    if passwords is not None:
        _check_contents(period_dir, manifest["outputs"], passwords, report)
    report.changed.sort()
    report.missing.sort()
    report.ok = not (report.changed or report.missing or report.unexpected or report.content_changed
                     or report.undecryptable)
    return report


def _check_contents(period_dir: Path, outputs: list[dict], passwords: dict[str, str], report: VerifyReport) -> None:
    from pipeline.distribution import DistributionError, decrypt_bytes, password_for_file

    for entry in outputs:
        rel, expected = entry["path"], entry.get("plain_sha256")
        target = period_dir / rel
        if not isinstance(expected, str) or not target.is_file():
            continue
        password = password_for_file(rel, passwords)
        try:
            if password is None:
                raise DistributionError("", "")
            plain = decrypt_bytes(target.read_bytes(), password, rel)
        except (DistributionError, OSError):
            report.undecryptable.append(rel)
            continue
        report.decrypted += 1
        if hashlib.sha256(plain).hexdigest() != expected:
            report.content_changed.append(rel)


def _hash_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:  # unreadable now: it cannot match, so it counts as changed
        return None


def _say(lang: str, zh: str, en: str) -> str:
    return {"zh": zh, "en": en}.get(lang, f"{zh} / {en}")


def format_report(report: VerifyReport, lang: str = "both") -> str:
    """Screen text: one line per problem file, then a verdict."""
    lines = []
    groups = (
        (report.changed, "已被修改", "changed"),
        (report.missing, "缺失", "missing"),
        (report.unexpected, "清单外的文件", "unexpected"),
        (report.content_changed, "解密后内容已被修改", "decrypted content changed"),
        (report.undecryptable, "无法解密(密码不对或缺少密码)", "cannot be decrypted (wrong or no password)"),
        (report.inputs_changed, "输入文件已变(不影响结论)", "input changed (informational)"),
        (report.inputs_missing, "输入文件不在原路径(不影响结论)", "input not found (informational)"),
    )
    for names, zh, en in groups:
        for name in names:
            lines.append(f"{_say(lang, zh, en)}: {name}")
    if report.ok:
        lines.append(_say(lang, f"校验通过:{report.checked} 个输出文件与清单一致。",
                          f"Verified: all {report.checked} output files match the manifest."))
        if report.decrypted:
            lines.append(_say(lang, f"其中 {report.decrypted} 个加密文件已解密,内容与清单一致。",
                              f"{report.decrypted} encrypted files were decrypted: their content matches too."))
    else:
        problems = len(report.changed) + len(report.missing) + len(report.unexpected) + \
            len(report.content_changed) + len(report.undecryptable)
        lines.append(_say(lang, f"校验失败:{problems} 个文件与清单不符(共检查 {report.checked} 个)。",
                          f"Verification failed: {problems} file(s) do not match the manifest "
                          f"({report.checked} checked)."))
    return "\n".join(lines)


_VERIFY_HELP = """Re-hash every output file of a period against its audit manifest.

\b
按审计清单重新计算输出文件的 SHA-256,列出被修改、缺失和清单外的文件。
Exit status: 0 everything matches / 全部一致, 1 anything changed, missing or unexpected,
or no manifest / 有不一致或没有清单。

\b
Examples / 示例:
  kpi verify output/2026-10
  kpi verify output/2026-Q3 --json
  kpi verify output/2026-10 --passwords hr/passwords.xlsx
"""


@click.command("verify", help=_VERIFY_HELP)
@click.argument("period_dir", metavar="DIR/P", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON. 以 JSON 输出。")
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), default="both", show_default=True,
              help="Language of messages. 提示语言。")
@click.option("--passwords", "passwords_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also decrypt the encrypted per-employee files (employee_id, password: .xlsx or .csv; "
                   "the generated employees/passwords.xlsx with KPI_MASTER_PASSWORD) and check their content. "
                   "同时解密并核对加密的个人计分卡。")
@click.pass_context
def verify_command(ctx: click.Context, period_dir: str, as_json: bool, lang: str, passwords_file: Path | None) -> None:
    try:
        passwords = None
        if passwords_file is not None:
            from pipeline.distribution import DistributionError, load_passwords

            try:
                passwords = load_passwords(passwords_file)
            except DistributionError as exc:
                click.echo(exc.message("en" if lang == "en" else "zh"), err=True)
                ctx.exit(2)
        report = verify(Path(period_dir), passwords)
    except ManifestError as exc:
        click.echo(exc.message(lang), err=True)
        if as_json:
            click.echo(json.dumps({"ok": False, "error": exc.message("en"),
                                   "error_zh": exc.message("zh")}, ensure_ascii=False, indent=2))
        ctx.exit(1)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_report(report, lang))
    ctx.exit(0 if report.ok else 1)


__all__ = [
    "MANIFEST_PATH", "MANIFEST_VERSION", "ManifestError", "VerifyReport", "build_manifest",
    "format_report", "load_manifest", "manifest_bytes", "sha256_file", "verify", "verify_command",
    "write_manifest",
]
