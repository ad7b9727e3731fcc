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

from pipeline.findings import BilingualError
from pipeline.texts import plural, say

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
                   counts: dict, warnings: list[dict], package_version: str) -> dict:
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


def verify(period_dir: Path) -> VerifyReport:
    """Re-hash every output against the manifest; report changed, missing and unexpected files."""
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
    report.changed.sort()
    report.missing.sort()
    report.ok = not (report.changed or report.missing or report.unexpected)
    return report


def _hash_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:  # unreadable now: it cannot match, so it counts as changed
        return None


def format_report(report: VerifyReport, lang: str = "zh") -> str:
    """Screen text: one line per problem file, then a verdict."""
    lines = []
    groups = (
        (report.changed, "已被修改", "changed"),
        (report.missing, "缺失", "missing"),
        (report.unexpected, "清单外的文件", "unexpected"),
        (report.inputs_changed, "输入文件已变(不影响结论)", "input changed (informational)"),
        (report.inputs_missing, "输入文件不在原路径(不影响结论)", "input not found (informational)"),
    )
    for names, zh, en in groups:
        for name in names:
            lines.append(f"{say(zh, en, lang, ' / ')}: {name}")
    if report.ok:
        lines.append(say(f"校验通过:{report.checked} 个输出文件与清单一致。",
                         f"Verified: all {report.checked} output files match the manifest.", lang))
    else:
        problems = len(report.changed) + len(report.missing) + len(report.unexpected)
        lines.append(say(f"校验失败:{problems} 个文件与清单不符(共检查 {report.checked} 个)。",
                         f"Verification failed: {plural(problems, 'file does', 'files do')} not match the manifest "
                         f"({report.checked} checked).", lang))
    return "\n".join(lines)


__all__ = [
    "MANIFEST_PATH", "MANIFEST_VERSION", "ManifestError", "VerifyReport", "build_manifest",
    "format_report", "load_manifest", "manifest_bytes", "sha256_file", "verify", "write_manifest",
]
