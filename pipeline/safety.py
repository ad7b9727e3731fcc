"""Checks made before any library opens an input: is it a workbook, and is it safe to inflate?

openpyxl and calamine trust the zip they are given: a 0.5 MB file can inflate to 0.5 GB, and
an encrypted workbook is not a zip at all. We look first, with limits HR can raise.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


@dataclass(frozen=True)
class Limits:
    """How much an input may inflate. Raise them in policy.yaml (`limits:`) for giant files."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_uncompressed_bytes: int = 1024 * 1024 * 1024
    min_compression_ratio: float = 0.005  # compressed/uncompressed per member (POI uses 0.01)
    max_members: int = 10_000
    max_sheets: int = 250
    max_rows: int = 1_100_000
    max_columns: int = 200


class UnreadableInput(Exception):
    """A file we refuse to read, with the reason in both languages."""

    def __init__(self, reason_zh: str, reason_en: str):
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def check_workbook_file(path: Path, limits: Limits = Limits()) -> None:
    """Raise UnreadableInput unless `path` is a plausible, safely sized .xlsx/.xlsm zip."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise UnreadableInput(f"无法打开文件({exc.strerror})", f"cannot open the file ({exc.strerror})") from None
    if size == 0:
        raise UnreadableInput("文件为空", "the file is empty")
    if size > limits.max_file_bytes:
        raise UnreadableInput(
            f"文件过大({size / 1e6:.0f} MB,上限 {limits.max_file_bytes / 1e6:.0f} MB,可在政策 limits.max_file_mb 中调整)",
            f"the file is too large ({size / 1e6:.0f} MB, limit {limits.max_file_bytes / 1e6:.0f} MB; "
            "raise limits.max_file_mb in the policy)",
        )
    if head == OLE2_MAGIC:
        raise UnreadableInput(
            "这是加密(设置了打开密码)的工作簿,或旧版 .xls 文件。请去掉密码,另存为 .xlsx 后再放入。",
            "this is a password-protected (encrypted) workbook or a legacy .xls file. "
            "Remove the password and save it as .xlsx.",
        )
    if not head.startswith(b"PK"):
        raise UnreadableInput(
            "不是 Excel 工作簿(.xlsx)。请在 Excel 中另存为 .xlsx。",
            "not an Excel workbook (.xlsx). Save it as .xlsx in Excel.",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UnreadableInput(
            f"文件已损坏或不完整(可能未传完):{exc}",
            f"the file is damaged or truncated (perhaps not fully copied): {exc}",
        ) from None
    if len(members) > limits.max_members:
        raise UnreadableInput(
            f"压缩包成员过多({len(members)} 个,上限 {limits.max_members})",
            f"too many zip members ({len(members)}, limit {limits.max_members})",
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        raise UnreadableInput(
            f"解压后过大({total / 1e6:.0f} MB,上限 {limits.max_uncompressed_bytes / 1e6:.0f} MB),疑似压缩炸弹;"
            "如确为正常大文件,请在政策 limits.max_uncompressed_mb 中调高上限",
            f"it inflates to {total / 1e6:.0f} MB (limit {limits.max_uncompressed_bytes / 1e6:.0f} MB): "
            "possibly a zip bomb; if it is a genuine large file raise limits.max_uncompressed_mb in the policy",
        )
    for member in members:
        if member.file_size > 1024 * 1024 and member.compress_size / member.file_size < limits.min_compression_ratio:
            raise UnreadableInput(
                f"压缩比异常({member.filename} 压缩比 {member.compress_size / member.file_size:.4f}),疑似压缩炸弹",
                f"abnormal compression ratio ({member.filename}: {member.compress_size / member.file_size:.4f}); "
                "possibly a zip bomb",
            )
    # Only now, with the sizes known to be sane, inflate the members to check their CRCs.
    if size < 20 * 1024 * 1024:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:
            raise UnreadableInput(
                f"文件已损坏或不完整(可能未传完):{exc}",
                f"the file is damaged or truncated (perhaps not fully copied): {exc}",
            ) from None
        if bad is not None:
            raise UnreadableInput(f"文件已损坏:压缩成员 {bad} 校验失败",
                                  f"the file is damaged: member {bad} fails its CRC")
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        if "EncryptedPackage" in names:
            raise UnreadableInput("工作簿已加密,请去掉密码后另存为 .xlsx", "the workbook is encrypted; remove the password")
        raise UnreadableInput(
            "这是压缩包,但不是 Excel 工作簿(缺少 xl/workbook.xml)",
            "this is a zip file but not an Excel workbook (no xl/workbook.xml)",
        )
    if "xl/workbook.bin" in names:
        raise UnreadableInput(
            "不支持 .xlsb 二进制工作簿,请另存为 .xlsx",
            "binary .xlsb workbooks are not supported; save it as .xlsx",
        )


def assert_defusedxml_in_force() -> None:
    """openpyxl expands XML entities unless defusedxml is installed: refuse to run without it."""
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:  # pragma: no cover - defusedxml is a hard dependency
        raise RuntimeError("defusedxml is not in force for openpyxl; reinstall the package")
