"""The audit manifest (`audit/manifest.json`) and `kpi verify`.

The manifest pins what a run read and wrote (SHA-256 of every input and output, the policy
text, the package version), so an auditor can prove months later that a scorecard is the one
the batch produced. It holds no timestamps: the same inputs give a byte-identical manifest.

Signed with `kpi run --sign-key`, the manifest also protects itself: `audit/manifest.sig` is an
Ed25519 signature of its exact bytes (`pipeline.signing`), and `kpi verify --public-key` fails
when it is missing or does not match. What varies from run to run (time, operator, host, the
command line) is kept in `audit/run.json` (signed in `audit/run.sig`), outside the
byte-identical outputs: the manifest lists none of these four files.

`verify` fails only on the outputs of the period folder (changed, missing or unexpected files,
counts that contradict the list, a signature that does not match): those are what the manifest
certifies. Inputs are re-hashed too when their recorded path still
exists and reported as `inputs_changed` / `inputs_missing`, without failing, because an inbox is
routinely archived or moved after the batch.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.findings import BilingualError
from pipeline.texts import plural, say

MANIFEST_VERSION = 2  # 2: the effective policy, counts.output_files
MANIFEST_PATH = "audit/manifest.json"  # relative to the period's output folder
MANIFEST_SIG = "audit/manifest.sig"
RUN_RECORD = "audit/run.json"
RUN_SIG = "audit/run.sig"
RUN_RECORD_VERSION = 1
# The manifest and what vouches for it: not outputs (the manifest cannot list itself; the run
# record and the signatures vary with the run or the key), never "unexpected" to `verify`.
AUDIT_RECORDS = frozenset({MANIFEST_PATH, MANIFEST_SIG, RUN_RECORD, RUN_SIG})
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
    """Every file under the folder, as sorted forward-slash relative paths, minus the manifest,
    the run record and the signatures."""
    files = []
    for p in outputs_dir.rglob("*"):
        if p.is_file():
            rel = p.relative_to(outputs_dir).as_posix()
            if rel not in AUDIT_RECORDS:
                files.append(rel)
    return sorted(files)


def build_manifest(*, period: str, inputs: list[dict], policy_text: str, outputs_dir: Path,
                   counts: dict, warnings: list[dict], package_version: str,
                   policy_settings: dict | None = None, output_details: dict[str, dict] | None = None,
                   plain_hashes: dict[str, str] | None = None) -> dict:
    """The manifest of one run. Inputs are dicts from the caller (path, kind, template_version,
    rows, and the `size` and `sha256` of the bytes the run read); an input given without them
    is hashed here from the file at `path`. An input that could not be read is recorded with
    None for both, never re-read (a run must not fail at its last step on a file it refused).

    `policy_settings`: the effective (merged) policy as plain JSON values (`Policy.settings`).
    `output_details`: more fields for some outputs' entries, by relative path (e.g. what an
    encrypted file decrypts to). `counts.output_files` is the number of outputs listed, so a
    file removed together with its entry is still noticed by `verify` without a signature."""
    outputs_dir = Path(outputs_dir)
    input_entries = []
    for item in inputs:
        entry = dict(item)
        entry["path"] = _as_given(item["path"])
        if "sha256" not in item:
            entry["size"], entry["sha256"] = _size_and_hash(Path(item["path"]))
        input_entries.append(entry)
    outputs = [
        {**(output_details or {}).get(rel, {}), "path": rel, "size": (outputs_dir / rel).stat().st_size,
         "sha256": sha256_file(outputs_dir / rel)}
        for rel in _output_files(outputs_dir)
    ]
    policy: dict[str, Any] = {"content": policy_text, "sha256": hashlib.sha256(policy_text.encode("utf-8")).hexdigest()}
    if policy_settings is not None:
        policy["effective"] = policy_settings
        policy["effective_sha256"] = hashlib.sha256(_canonical_json(policy_settings)).hexdigest()
    for entry in outputs:  # encrypted files differ on every run (random salt); their content does not
        if plain_hashes and entry["path"] in plain_hashes:
            entry["plain_sha256"] = plain_hashes[entry["path"]]
    return {
        "manifest_version": MANIFEST_VERSION,
        "period": period,
        "package_version": package_version,
        "policy": policy,
        "inputs": input_entries,
        "outputs": outputs,
        "counts": {**counts, "output_files": len(outputs)},
        "warnings": warnings,
    }


def _canonical_json(value: Any) -> bytes:
    """Compact, sorted, UTF-8: the bytes a settings hash is taken over."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


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


# ------------------------------------------------------------------------------ run record, signatures

def utc_now() -> str:
    """The current UTC time to the second, as the run record writes it (2026-11-03T08:15:02Z)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _operator() -> str:
    """Who ran the batch, as the system knows them ('' when it cannot say, e.g. in a container
    without a user entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def build_run_record(*, period: str, started_utc: str, finished_utc: str, manifest: bytes,
                     signed_by: str | None, package_version: str) -> dict:
    """The facts of one run that vary from run to run and so stay out of the manifest: when,
    who, where, with what version and command line; tied to the manifest by its hash."""
    return {
        "run_record_version": RUN_RECORD_VERSION,
        "period": period,
        "started_utc": started_utc,
        "finished_utc": finished_utc,
        "operator": _operator(),
        "host": socket.gethostname(),
        "kpi_version": package_version,
        "command_line": [str(arg) for arg in sys.argv],
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signed_by": signed_by,
    }


def seal(outputs_dir: Path, *, period: str, started_utc: str, package_version: str, key=None) -> list[Path]:
    """Write the run record beside the manifest already written, and with a private `key`
    (`pipeline.signing.load_private_key`) sign both: the signature covers the manifest's exact
    bytes on disk. Returns the files written."""
    from pipeline import signing

    outputs_dir = Path(outputs_dir)
    manifest = (outputs_dir / MANIFEST_PATH).read_bytes()
    written = []
    if key is not None:
        written.append(_write(outputs_dir / MANIFEST_SIG, signing.signature_text(key, manifest)))
    record = build_run_record(period=period, started_utc=started_utc, finished_utc=utc_now(), manifest=manifest,
                              signed_by=signing.fingerprint(key) if key is not None else None,
                              package_version=package_version)
    record_bytes = manifest_bytes(record)
    written.append(_write(outputs_dir / RUN_RECORD, record_bytes))
    if key is not None:
        written.append(_write(outputs_dir / RUN_SIG, signing.signature_text(key, record_bytes)))
    return written


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
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
    # Counts in the manifest that contradict its own lists: {check, message_zh, message_en}.
    inconsistent: list[dict] = field(default_factory=list)
    # None: no public key given, authenticity not checked; True: signatures match; False: see
    # signature_problems ({file, reason: missing|mismatch|other_manifest, message_zh, message_en}).
    authenticated: bool | None = None
    signature_problems: list[dict] = field(default_factory=list)
    public_key: str | None = None  # fingerprint of the key checked against
    signed: bool = False  # the folder holds a manifest signature (checked or not)
    # With passwords: encrypted files whose decrypted content differs, or that could not be decrypted.
    content_changed: list[str] = field(default_factory=list)
    undecryptable: list[str] = field(default_factory=list)
    decrypted: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def load_manifest(period_dir: Path) -> dict:
    """The manifest of a period folder, checked for shape; ManifestError if absent or broken."""
    return _load_manifest(period_dir)[0]


def _load_manifest(period_dir: Path) -> tuple[dict, bytes]:
    """The manifest and its exact bytes (what a signature covers)."""
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
        raw = path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
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
    return manifest, raw


def verify(period_dir: Path, public_key: Any = None, passwords: dict[str, str] | None = None) -> VerifyReport:
    """Re-hash every output against the manifest; report changed, missing and unexpected files
    and counts that contradict the manifest's lists. With `public_key` (a path to `kpi.pub`, or
    a loaded key) also check the signatures of the manifest and the run record: without one,
    anyone able to edit the folder could have rewritten the manifest, and the report says that
    authenticity was not checked. SigningError for a key that cannot be used.

    `passwords` (employee ID -> password): also decrypt every encrypted output and compare its
    content with the manifest's `plain_sha256`."""
    from pipeline import signing

    period_dir = Path(period_dir)
    key = None
    if public_key is not None:
        key = public_key if isinstance(public_key, signing.Ed25519PublicKey) else signing.load_public_key(public_key)
    manifest, raw = _load_manifest(period_dir)
    report = VerifyReport(ok=True, signed=(period_dir / MANIFEST_SIG).is_file())
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
    report.inconsistent = _inconsistencies(manifest)
    if key is not None:
        report.public_key = signing.fingerprint(key)
        report.signature_problems = _signature_problems(period_dir, raw, key)
        report.authenticated = not report.signature_problems
    report.ok = not (report.changed or report.missing or report.unexpected or report.inconsistent
                     or report.signature_problems or report.content_changed or report.undecryptable)
    return report


def _inconsistencies(manifest: dict) -> list[dict]:
    """Counts that contradict the manifest's own lists: an output listed twice, a number of
    output files other than the entries (a file deleted with its entry, or a count edited), a
    grade distribution that does not add up to the people scored."""
    problems = []
    outputs = manifest["outputs"]
    paths = [entry["path"] for entry in outputs]
    for rel in sorted({p for p in paths if paths.count(p) > 1}):
        problems.append({"check": "duplicate_output",
                         "message_zh": f"清单把 {rel} 列了不止一次", "message_en": f"the manifest lists {rel} more than once"})
    raw_counts = manifest.get("counts")
    counts: dict = raw_counts if isinstance(raw_counts, dict) else {}
    version = manifest.get("manifest_version")
    recorded = counts.get("output_files")
    if (isinstance(version, int) and version >= 2) or recorded is not None:
        if isinstance(recorded, bool) or not isinstance(recorded, int):
            problems.append({"check": "output_files",
                             "message_zh": "清单缺少输出文件数(counts.output_files)",
                             "message_en": "the manifest has no output file count (counts.output_files)"})
        elif recorded != len(outputs):
            problems.append({"check": "output_files",
                             "message_zh": f"清单记录 {recorded} 个输出文件,却只列出 {len(outputs)} 个",
                             "message_en": f"the manifest counts {recorded} output files but lists {len(outputs)}"})
    scored, grades = counts.get("scored"), counts.get("grades")
    if (isinstance(scored, int) and isinstance(grades, dict)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in grades.values())
            and sum(grades.values()) != scored):
        problems.append({"check": "scored",
                         "message_zh": f"清单记录已评分 {scored} 人,但等级分布合计 {sum(grades.values())} 人",
                         "message_en": f"the manifest counts {scored} people scored but its grade distribution "
                                       f"adds up to {sum(grades.values())}"})
    return problems


def _signature_problems(period_dir: Path, manifest: bytes, key) -> list[dict]:
    """What is wrong with the signatures of the manifest and of the run record, under `key`."""
    from pipeline import signing

    problems = []

    def problem(rel: str, reason: str, zh: str, en: str) -> None:
        problems.append({"file": rel, "reason": reason, "message_zh": zh, "message_en": en})

    def read(rel: str) -> bytes | None:
        try:
            return (period_dir / rel).read_bytes()
        except OSError:
            return None

    def signed(body: bytes, sig_rel: str, zh: str, en: str) -> bool:
        """Whether `body` carries a good signature in `sig_rel`; a problem named if not."""
        signature = read(sig_rel)
        if signature is None:
            problem(sig_rel, "missing", f"{zh}没有签名(签名文件缺失)", f"the {en} is not signed (the signature file is missing)")
        elif not signing.signature_matches(key, body, signature):
            problem(sig_rel, "mismatch", f"{zh}的签名与公钥不符:{zh}在签名后被改动,或由另一把密钥签名",
                    f"the {en}'s signature does not match the public key: it was changed after signing, "
                    "or signed with another key")
        else:
            return True
        return False

    signed(manifest, MANIFEST_SIG, "清单", "manifest")
    record = read(RUN_RECORD)
    if record is None:
        problem(RUN_RECORD, "missing", "运行记录缺失", "the run record is missing")
    elif signed(record, RUN_SIG, "运行记录", "run record"):
        try:
            named = json.loads(record.decode("utf-8")).get("manifest_sha256")
        except (UnicodeDecodeError, ValueError, AttributeError):
            named = None
        if named != hashlib.sha256(manifest).hexdigest():
            problem(RUN_RECORD, "other_manifest", "运行记录属于另一份清单(不是本文件夹中的清单)",
                    "the run record belongs to another manifest, not the one in this folder")
    return problems


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
    """The project's `say`, with a slash between the languages."""
    return say(zh, en, lang, " / ")


def format_report(report: VerifyReport, lang: str = "zh") -> str:
    """Screen text: one line per problem file, then a verdict, then whether authenticity was checked."""
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
    for item in report.inconsistent:
        lines.append(_say(lang, f"清单自相矛盾:{item['message_zh']}", f"manifest inconsistent: {item['message_en']}"))
    for item in report.signature_problems:
        lines.append(_say(lang, f"签名无效:{item['file']}:{item['message_zh']}",
                          f"signature failed: {item['file']}: {item['message_en']}"))
    problems = (len(report.changed) + len(report.missing) + len(report.unexpected) + len(report.inconsistent)
                + len(report.signature_problems) + len(report.content_changed) + len(report.undecryptable))
    if report.ok:
        lines.append(say(f"校验通过:{report.checked} 个输出文件与清单一致。",
                         f"Verified: all {report.checked} output files match the manifest.", lang))
        if report.decrypted:
            lines.append(say(f"其中 {report.decrypted} 个加密文件已解密,内容与清单一致。",
                             f"{report.decrypted} encrypted files were decrypted: their content matches too.", lang))
    else:
        lines.append(_say(lang, f"校验失败:发现 {problems} 处问题(共检查 {report.checked} 个输出文件)。",
                          f"Verification failed: {plural(problems, 'problem')} found ({report.checked} output "
                          f"files checked)."))
    if report.authenticated:
        lines.append(_say(lang, f"清单和运行记录的签名与公钥 {report.public_key} 相符。",
                          f"The manifest and run record are signed by the public key {report.public_key}."))
    elif report.authenticated is None:
        signed = ("该文件夹带有签名,但", "the folder is signed, but ") if report.signed else ("", "")
        lines.append(_say(lang, f"注意:{signed[0]}未提供 --public-key,未校验清单的真实性:能改动该文件夹的人也能改写清单。",
                          f"Note: {signed[1]}no --public-key was given, so the manifest's authenticity was not "
                          f"checked: whoever can edit the folder can also rewrite the manifest."))
    return "\n".join(lines)


__all__ = [
    "AUDIT_RECORDS", "MANIFEST_PATH", "MANIFEST_SIG", "MANIFEST_VERSION", "ManifestError", "RUN_RECORD", "RUN_SIG",
    "VerifyReport", "build_manifest", "build_run_record", "format_report", "load_manifest", "manifest_bytes",
    "seal", "sha256_file", "utc_now", "verify", "write_manifest",
]
