"""Checks made before any library opens an input: what is it, and is it safe to read?

openpyxl and calamine trust the file they are given: a 0.5 MB zip can inflate to 0.5 GB, an
encrypted workbook is not a zip at all, and calamine allocates a sheet as one dense block
from its first to its last cell, so two cells (A1 and GR1048576) ask it for gigabytes and a
cell reference like `A99999999999` aborts the process. We look first, with limits HR can
raise in the policy (`limits:`), and every refusal says which limit and how to raise it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How large an input may be. Raise them in policy.yaml (`limits:`) for giant files.

    Memory: a sheet costs about 40 bytes per cell of its used area (calamine's dense block
    plus the Python grid) plus its values, so `max_cells` is what bounds memory; the other
    limits refuse the shapes that only an accident or an attack produces.
    """

    max_file_bytes: int = 200 * MB
    max_uncompressed_bytes: int = 1024 * MB
    min_compression_ratio: float = 0.005  # compressed/uncompressed per member (POI uses 0.01)
    max_members: int = 10_000
    max_sheets: int = 250
    max_rows: int = 1_100_000
    max_columns: int = 200
    max_sheet_bytes: int = 300 * MB  # one sheet's XML (or one CSV file)
    max_cells: int = 5_000_000  # rows × columns from A1 to the last cell, all sheets together
    max_merged_ranges: int = 100_000  # per sheet; each costs Python objects (not a policy key)


class UnreadableInput(Exception):
    """A file we refuse to read, with the reason in both languages."""

    def __init__(self, reason_zh: str, reason_en: str):
        super().__init__(reason_en)
        self.reason_zh = reason_zh
        self.reason_en = reason_en


def _mb(value: float) -> str:
    return f"{value / MB:,.0f}" if value >= MB else f"{value / MB:.2f}"


def _raise_hint(key: str) -> tuple[str, str]:
    return (f"如确为正常文件,可在政策文件 limits.{key} 中调高上限",
            f"if the file is genuine, raise limits.{key} in the policy file")


def _damaged(exc: BaseException) -> UnreadableInput:
    return UnreadableInput(
        f"文件已损坏或不完整(可能未传完):{exc}。请重新从 Excel 另存为 .xlsx 后再放入。",
        f"the file is damaged or truncated (perhaps not fully copied): {exc}. "
        "Save it again from Excel as .xlsx.",
    )


# ------------------------------------------------------------------------------ file formats

XLSX, XLS, CSV = "xlsx", "xls", "csv"
CSV_SUFFIXES = {".csv"}


def check_input_file(path: Path, limits: Limits = Limits()) -> str:
    """What `path` holds and that it is safe to read: `xlsx` (also .xlsm), `xls` or `csv`.

    Raises UnreadableInput with the reason otherwise. Nothing here parses a workbook: the
    format is told by content (a .xlsx renamed .xls is still a zip), encrypted workbooks are
    recognised inside their OLE2 container, and zip members are sized before inflating.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise UnreadableInput(f"无法打开文件({exc.strerror})", f"cannot open the file ({exc.strerror})") from None
    if size == 0:
        raise UnreadableInput("文件为空(0 字节)。请重新保存后再放入。", "the file is empty (0 bytes). Save it again.")
    if size > limits.max_file_bytes:
        zh, en = _raise_hint("max_file_mb")
        raise UnreadableInput(
            f"文件过大({_mb(size)} MB,上限 {_mb(limits.max_file_bytes)} MB);{zh}",
            f"the file is too large ({_mb(size)} MB, limit {_mb(limits.max_file_bytes)} MB); {en}",
        )
    if head == OLE2_MAGIC:
        kind = ole2_kind(path, size)
        if kind == "encrypted":
            raise UnreadableInput(
                "工作簿设置了打开密码(已加密),无法读取。请在 Excel 中打开,"
                "文件 → 信息 → 保护工作簿 → 用密码进行加密,清空密码,再另存为 .xlsx。",
                "the workbook is password-protected (encrypted) and cannot be read. Open it in Excel, "
                "remove the password (File → Info → Protect Workbook → Encrypt with Password) and "
                "save it as .xlsx.",
            )
        if kind == XLS:
            return XLS
        raise UnreadableInput(
            "这是 Office 复合文档,但既不是旧版 .xls 工作簿也无法识别:可能是加密(设置了打开密码)的工作簿。"
            "请去掉密码,另存为 .xlsx 后再放入。",
            "this is an Office compound file but not a legacy .xls workbook: probably a "
            "password-protected (encrypted) workbook. Remove the password and save it as .xlsx.",
        )
    if head.startswith(b"PK"):
        check_workbook_zip(path, size, limits)
        return XLSX
    if path.suffix.lower() in CSV_SUFFIXES:
        if size > limits.max_sheet_bytes:
            zh, en = _raise_hint("max_sheet_mb")
            raise UnreadableInput(
                f"CSV 文件过大({_mb(size)} MB,单表上限 {_mb(limits.max_sheet_bytes)} MB);{zh}",
                f"the CSV file is too large ({_mb(size)} MB, limit {_mb(limits.max_sheet_bytes)} MB per sheet); {en}",
            )
        return CSV
    raise UnreadableInput(
        "不是 Excel 工作簿(.xlsx)。请在 Excel 中另存为 .xlsx。",
        "not an Excel workbook (.xlsx). Save it as .xlsx in Excel.",
    )


def check_workbook_file(path: Path, limits: Limits = Limits()) -> None:
    """Raise UnreadableInput unless `path` is a plausible, safely sized .xlsx/.xlsm zip whose
    sheets are all within the limits: the reader's checks, for the places that open the
    workbook with openpyxl (the errors workbook). A legacy .xls or a CSV was read by the
    reader but cannot be copied by openpyxl.
    """
    kind = check_input_file(path, limits)
    if kind == XLSX:
        scan_workbook_sheets(path, limits)
    if kind == XLS:
        raise UnreadableInput("这是旧版 .xls 文件(数据已读取,但无法复制其工作表)",
                              "it is a legacy .xls file (its data was read, but its sheets cannot be copied)")
    if kind == CSV:
        raise UnreadableInput("这是 CSV 文本文件(数据已读取,但没有可复制的工作表)",
                              "it is a CSV text file (its data was read, but it has no sheets to copy)")


_ENCRYPTED_STREAMS = tuple(name.encode("utf-16-le") for name in ("EncryptedPackage", "EncryptionInfo"))
_XLS_STREAMS = tuple(name.encode("utf-16-le") for name in ("Workbook", "Book"))


def ole2_kind(path: Path, size: int | None = None) -> str:
    """`encrypted`, `xls` or `unknown` for an OLE2 compound file, from its stream names.

    Stream names sit in the directory, UTF-16LE: an encrypted .xlsx holds `EncryptedPackage`
    and `EncryptionInfo`, a legacy .xls a `Workbook` (BIFF8) or `Book` (BIFF5) stream. The
    directory is found from the header; the file's first and last 64 KB are searched too.
    """
    size = path.stat().st_size if size is None else size
    window = 64 * 1024
    with path.open("rb") as handle:
        head = handle.read(window)
        parts = [head]
        if len(head) >= 0x34:
            shift = int.from_bytes(head[0x1E:0x20], "little")
            first_dir = int.from_bytes(head[0x30:0x34], "little")
            if 7 <= shift <= 16 and first_dir < 0xFFFFFFFA:
                offset = (first_dir + 1) << shift
                if offset < size:
                    handle.seek(offset)
                    parts.append(handle.read(window))
        if size > window:
            handle.seek(max(size - window, 0))
            parts.append(handle.read(window))
    data = b"".join(parts)
    if any(name in data for name in _ENCRYPTED_STREAMS):
        return "encrypted"
    if any(name in data for name in _XLS_STREAMS):
        return XLS
    return "unknown"


# ------------------------------------------------------------------------------ zip

_XML_MEMBER = re.compile(r"\.(xml|rels|vml)$", re.IGNORECASE)


def check_workbook_zip(path: Path, size: int, limits: Limits) -> None:
    """Sizes, ratios, CRCs and XML prologs of an OOXML zip, without inflating anything big."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise _damaged(exc) from None
    if len(members) > limits.max_members:
        raise UnreadableInput(
            f"压缩包成员过多({len(members)} 个,上限 {limits.max_members}),不像 Excel 工作簿。请另存为 .xlsx。",
            f"too many zip members ({len(members)}, limit {limits.max_members}): not an Excel "
            "workbook as Excel writes it. Save it again as .xlsx.",
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        zh, en = _raise_hint("max_uncompressed_mb")
        raise UnreadableInput(
            f"解压后过大({_mb(total)} MB,上限 {_mb(limits.max_uncompressed_bytes)} MB),疑似压缩炸弹;{zh}",
            f"it inflates to {_mb(total)} MB (limit {_mb(limits.max_uncompressed_bytes)} MB): "
            f"possibly a zip bomb; {en}",
        )
    for member in members:
        if member.file_size > MB and member.compress_size / member.file_size < limits.min_compression_ratio:
            ratio = member.compress_size / member.file_size
            zh, en = _raise_hint("min_compression_ratio")
            raise UnreadableInput(
                f"压缩比异常({member.filename} 解压后 {_mb(member.file_size)} MB,压缩比 {ratio:.4f},"
                f"下限 {limits.min_compression_ratio}),疑似压缩炸弹;{zh}",
                f"abnormal compression ratio ({member.filename} inflates to {_mb(member.file_size)} MB, "
                f"ratio {ratio:.4f}, limit {limits.min_compression_ratio}): possibly a zip bomb; {en}",
            )
    names = {m.filename for m in members}
    # Only now, with the sizes known to be sane, inflate the members to check their CRCs. The
    # sheets are left to the sheet scan, which inflates each of them anyway (reading a member
    # to its end checks its CRC): one inflation per sheet, not two.
    skipped: set[str] = set()
    if size < CRC_CHECKED_BELOW:
        try:
            with zipfile.ZipFile(path) as archive:
                skipped = _scanned_parts(archive, names)
                bad = _failing_crc(archive, skipped)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:
            raise _damaged(exc) from None
        if bad is not None:
            raise _crc_refusal(bad)
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
    try:
        with zipfile.ZipFile(path) as archive:
            for member in members:
                if _XML_MEMBER.search(member.filename) and not member.is_dir():
                    try:
                        with archive.open(member) as handle:
                            problem = xml_prolog_problem(handle)
                    except zipfile.BadZipFile:
                        if member.filename in skipped:  # what the CRC check would have said
                            raise _crc_refusal(member.filename) from None
                        raise
                    if problem:
                        raise _entity_refusal(member.filename, problem)
    except UnreadableInput:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise _damaged(exc) from None


CRC_CHECKED_BELOW = 20 * MB  # files this small have every member's CRC checked before reading


def _crc_refusal(member: str) -> UnreadableInput:
    return UnreadableInput(f"文件已损坏:压缩成员 {member} 校验失败。请重新从 Excel 另存为 .xlsx。",
                           f"the file is damaged: member {member} fails its CRC. Save it again from Excel as .xlsx.")


def _scanned_parts(archive: zipfile.ZipFile, names: set[str]) -> set[str]:
    """The members the sheet scan inflates whatever else it finds: every worksheet the
    workbook's relationships name (`scan_workbook_sheets` goes through all of them). Nothing
    when the relationships cannot be read: then every member's CRC is checked here."""
    rels = "xl/_rels/workbook.xml.rels"
    if rels not in names:
        return set()
    try:
        data = archive.read(rels)
    except zipfile.BadZipFile:
        return set()
    return sheet_part_paths(data) & names


def _failing_crc(archive: zipfile.ZipFile, skip: set[str]) -> str | None:
    """`ZipFile.testzip` for the members not in `skip`: the name of the first whose CRC fails."""
    for info in archive.infolist():
        if info.filename in skip:
            continue
        try:
            with archive.open(info.filename, "r") as handle:
                while handle.read(MB):
                    pass
        except zipfile.BadZipFile:
            return info.filename
    return None


def _entity_refusal(member: str, problem: str) -> UnreadableInput:
    if problem == "doctype":
        return UnreadableInput(
            f"文件内部的 XML({member})含有 <!DOCTYPE>/<!ENTITY> 实体声明,Excel 从不写入这种内容,"
            "疑似“实体膨胀”(billion laughs)攻击文件,已拒绝读取。请在 Excel 中重新另存为 .xlsx。",
            f"its XML ({member}) declares a DTD or entities (<!DOCTYPE>/<!ENTITY>), which Excel never "
            "writes: possibly an entity-expansion ('billion laughs') attack, so it was not read. "
            "Save it again from Excel as .xlsx.",
        )
    return UnreadableInput(
        f"文件内部的 XML({member})编码或开头不正常(不是 UTF-8,或开头过长),已拒绝读取。请在 Excel 中重新另存为 .xlsx。",
        f"its XML ({member}) has an unusual encoding or header (not UTF-8, or an over-long "
        "prolog), so it was not read. Save it again from Excel as .xlsx.",
    )


_PROLOG_LIMIT = 256 * 1024


def xml_prolog_problem(handle) -> str | None:
    """`doctype` when the XML declares a DTD (entities live there), `encoding` when it is not
    UTF-8-compatible or its prolog is absurdly long, else None.

    A DTD may only stand in the prolog, before the root element: the prolog (XML declaration,
    comments, processing instructions) is read token by token, so a DTD pushed down by a long
    comment is still found, and only the prolog is inflated.
    """
    data = b""
    while True:
        chunk = handle.read(16 * 1024)
        data += chunk
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64]:
            return "encoding"  # UTF-16/32: our byte scans could not see its tags
        if re.match(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*[\"'](?:utf-?16|utf-?32|ucs)", data[:512], re.IGNORECASE):
            return "encoding"
        state = _prolog_state(data)
        if state != "more":
            return state
        if not chunk:
            return None  # nothing but a prolog: the parser will say it is damaged
        if len(data) > _PROLOG_LIMIT:
            return "encoding"


def _prolog_state(data: bytes) -> str | None:
    """`doctype`, None (the root element is reached) or `more` (read on) for a prolog."""
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    length = len(data)
    while True:
        while pos < length and data[pos] in b" \t\r\n":
            pos += 1
        rest = data[pos:pos + 4]
        if len(rest) < 4 and (b"<!--".startswith(rest) or b"<?".startswith(rest[:2])):
            return "more"  # too little read to tell
        if data.startswith(b"<?", pos):
            end = data.find(b"?>", pos)
            if end < 0:
                return "more"
            pos = end + 2
        elif data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos)
            if end < 0:
                return "more"
            pos = end + 3
        elif data.startswith(b"<!", pos):
            return "doctype"  # <!DOCTYPE (and with it any <!ENTITY)
        else:
            return None  # the root element (or text the parser will reject)


# ------------------------------------------------------------------------------ sheets

@dataclass(frozen=True)
class SheetExtent:
    """The grid calamine will build for a sheet: rows × columns from A1 to its last cell."""

    rows: int
    columns: int

    @property
    def cells(self) -> int:
        return self.rows * self.columns


def sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML part inside the zip, resolved the way calamine resolves it."""
    from defusedxml import ElementTree as SafeET

    workbook = SafeET.fromstring(archive.read("xl/workbook.xml"))
    rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    parts: dict[str, str] = {}
    for sheet in workbook.iter():
        if not isinstance(sheet.tag, str) or sheet.tag.rsplit("}", 1)[-1] != "sheet":
            continue
        target = targets.get(sheet.get(f"{{{_REL_NS}}}id"), "")
        if target and sheet.get("name") not in parts:
            parts[sheet.get("name")] = calamine_part_path(target)
    return parts


_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def scan_workbook_sheets(path: Path, limits: Limits, each=None) -> dict[str, str]:
    """Check every member calamine may load as a sheet before anything parses it: its size,
    the extent of its cells (a lying <dimension> or one far cell cannot make calamine allocate
    gigabytes) and its merged ranges; the cells of all sheets together against max_cells.

    Each sheet's XML is inflated once (which checks its CRC); `each(part, data, prefixed)`
    sees it (the reader looks for the cells calamine shows blank; `prefixed`: whether any
    prefixed cell or formula tag such as `<x:f>` is in the sheet data). Returns {sheet name: part}.
    """
    from defusedxml.ElementTree import ParseError

    with zipfile.ZipFile(path) as archive:
        try:
            parts = sheet_parts(archive)
            rels = archive.read("xl/_rels/workbook.xml.rels")
        except (KeyError, ParseError) as exc:
            raise UnreadableInput(
                f"文件已损坏:工作簿目录无法读取({type(exc).__name__})。请在 Excel 中打开并另存为 .xlsx。",
                f"the file is damaged: its list of sheets cannot be read ({type(exc).__name__}). "
                "Open it in Excel and save it again as .xlsx.") from None
        names = {part: name for name, part in parts.items()}
        info = {m.filename: m for m in archive.infolist()}
        crc_checked = path.stat().st_size < CRC_CHECKED_BELOW
        total = 0
        for part in sorted(sheet_part_paths(rels) | set(parts.values())):
            if part not in info:
                continue
            label = names.get(part, part)
            check_sheet_size(label, info[part].file_size, limits)
            data = _inflate_checked(archive, info[part], crc_checked)
            start = _sheet_data_start(data)
            prefixed = _PREFIXED_TAG.search(data, start) is not None  # <x:c>, <x:f>: rare
            total += sheet_extent(data, label, limits, prefixed=prefixed).cells
            check_workbook_cells(total, limits)
            merges = data.count(b"mergeCell ") + data.count(b"mergeCell>") if b"mergeCell" in data else 0
            check_merged_ranges(label, merges, limits)
            if each is not None:
                each(part, data, prefixed)
            del data
    return parts


def _inflate_checked(archive: zipfile.ZipFile, member: zipfile.ZipInfo, crc_checked: bool) -> bytearray:
    """`_inflate`, where a file small enough to have its CRCs checked (check_workbook_zip left
    the sheets to this scan) is refused as that check refuses it."""
    if not crc_checked:
        return _inflate(archive, member)
    try:
        return _inflate(archive, member)
    except zipfile.BadZipFile:  # as `ZipFile.testzip` reports any member it cannot read through
        raise _crc_refusal(member.filename) from None
    except (zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise _damaged(exc) from None


def _sheet_data_start(data: bytes) -> int:
    match = _SHEET_DATA.search(data)
    return match.start() if match else 0


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytearray:
    """A member's bytes in one buffer of its declared size (ZipFile.read holds them twice)."""
    buffer = bytearray(member.file_size)
    view = memoryview(buffer)
    filled = 0
    with archive.open(member) as handle:
        while filled < len(buffer):
            count = handle.readinto(view[filled:filled + MB])
            if not count:
                break
            filled += count
        if filled < len(buffer) or handle.read(1):
            raise zipfile.BadZipFile(f"member {member.filename} is not the size its header says")
    view.release()
    return buffer


def check_workbook_cells(total: int, limits: Limits) -> None:
    if total > limits.max_cells:
        zh, en = _raise_hint("max_cells")
        raise UnreadableInput(
            f"工作簿过大(各工作表合计 {total:,} 个单元格,上限 {limits.max_cells:,})。请拆成几个文件;{zh}",
            f"the workbook is too large ({total:,} cells over all its sheets, limit {limits.max_cells:,}). "
            f"Split it into several files; {en}")


def check_merged_ranges(sheet: str, count: int, limits: Limits) -> None:
    if count > limits.max_merged_ranges:
        raise UnreadableInput(
            f"工作表“{sheet}”的合并单元格过多({count:,} 处,上限 {limits.max_merged_ranges:,})。"
            "请取消合并后另存为 .xlsx。",
            f"sheet '{sheet}' has too many merged ranges ({count:,}, limit {limits.max_merged_ranges:,}). "
            "Unmerge them and save it again as .xlsx.")


def sheet_part_paths(rels_xml: bytes) -> set[str]:
    """Every member calamine may load as a sheet: workbook relationship targets under
    worksheets/, chartsheets/ or dialogsheets/, resolved the way calamine resolves them."""
    paths = set()
    for target in re.findall(rb"""\sTarget\s*=\s*(?:"([^"]*)"|'([^']*)')""", rels_xml):
        value = (target[0] or target[1]).decode("utf-8", "replace")
        path = calamine_part_path(value)
        if len(path.split("/")) > 1 and path.split("/")[1] in ("worksheets", "chartsheets", "dialogsheets"):
            paths.add(path)
    return paths


def calamine_part_path(target: str) -> str:
    """A relationship target as calamine resolves it (`/xl/a` and `xl/a` are `xl/a`, else `xl/` + target)."""
    if target.startswith("/xl/"):
        return target[1:]
    if target.startswith("xl/"):
        return target
    return f"xl/{target}"


def check_sheet_size(sheet: str, file_size: int, limits: Limits) -> None:
    """Refuse one sheet's XML by its uncompressed size alone, before inflating it."""
    if file_size > limits.max_sheet_bytes:
        zh, en = _raise_hint("max_sheet_mb")
        raise UnreadableInput(
            f"工作表“{sheet}”过大(XML 解压后 {_mb(file_size)} MB,单表上限 {_mb(limits.max_sheet_bytes)} MB);{zh}",
            f"sheet '{sheet}' is too large ({_mb(file_size)} MB of XML, limit {_mb(limits.max_sheet_bytes)} MB "
            f"per sheet); {en}",
        )


def check_extent(sheet: str, extent: SheetExtent, limits: Limits) -> None:
    """Refuse a sheet whose last row, last column or used area is beyond the limits."""
    rows, columns = extent.rows, extent.columns
    if rows > limits.max_rows:
        key, what_zh, what_en = "max_rows", f"{rows:,} 行,上限 {limits.max_rows:,} 行", \
            f"{rows:,} rows, limit {limits.max_rows:,}"
    elif columns > limits.max_columns:
        key, what_zh, what_en = "max_columns", f"{columns:,} 列,上限 {limits.max_columns:,} 列", \
            f"{columns:,} columns, limit {limits.max_columns:,}"
    elif rows * columns > limits.max_cells:
        key = "max_cells"
        what_zh = f"{rows:,} 行 × {columns:,} 列 = {rows * columns:,} 个单元格,上限 {limits.max_cells:,}"
        what_en = f"{rows:,} rows × {columns:,} columns = {rows * columns:,} cells, limit {limits.max_cells:,}"
    else:
        return
    zh, en = _raise_hint(key)
    raise UnreadableInput(
        f"工作表“{sheet}”过大({what_zh})。如果只是远处有零星内容,请删除多余的行列后另存;{zh}",
        f"sheet '{sheet}' is too large ({what_en}). If only a stray cell lies far out, delete the "
        f"extra rows and columns and save again; {en}",
    )


_NAME = rb"(?:[A-Za-z_][\w.\-]*:)?"
_SHEET_DATA = re.compile(rb"<" + _NAME + rb"sheetData[\s/>]")
_DIMENSION = re.compile(rb"<" + _NAME + rb"dimension\s+ref\s*=\s*[\"']([A-Z]{1,3})(\d{1,7})(?::([A-Z]{1,3})(\d{1,7}))?[\"']")
_CELL_START = rb"<c(?=[\s/>])"  # literal start: the regex engine then skips to each "<c" fast
_PREFIXED_CELL = re.compile(rb":c[\s/>]")  # `<x:c ...>`: rare, so such sheets take the slow path
_PREFIXED_TAG = re.compile(rb":[cf][\s/>]")  # a prefixed cell or formula: one search answers both
# A whole <row> or <c> tag, its attributes quoted either way (a '>' inside a value is not an end).
_TAG = re.compile(rb"<(/?)" + _NAME + rb"(row|c)(?=[\s/>])((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>")
_REF = re.compile(rb'<c r="([A-Z]{1,3})([1-9]\d{0,6})"[^>]*(?<!/)>')  # a cell with content, not <c .../>
_ATTR_R = re.compile(rb"""(?:^|\s)r\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def sheet_extent(data: bytes, sheet: str, limits: Limits, prefixed: bool | None = None) -> SheetExtent:
    """The extent calamine will give this worksheet XML, found without parsing it; refuses
    (UnreadableInput) a sheet beyond the limits.

    Fast path: the sheet's `<dimension ref>` is within the limits and one regex search finds
    no cell outside it (every cell starts `<c r="REF"` with REF inside). Otherwise every <row>
    and <c> tag is walked the way calamine places cells (a cell without `r` follows the one
    before it; a row without `r` follows the row before it), so a lying dimension, a missing
    one or cells without references cannot hide a far cell. `prefixed=False`: the caller
    found no prefixed tag (`<x:c`) in the sheet data.
    """
    match = _SHEET_DATA.search(data)
    start = match.start() if match else 0
    dim = _DIMENSION.search(data, 0, start) if match else None
    guesses = []
    if dim:
        last_col, last_row = (dim.group(3), dim.group(4)) if dim.group(3) else (dim.group(1), dim.group(2))
        guesses.append(SheetExtent(int(last_row), column_number(last_col)))
    # No dimension (or a wrong one): guess from the references at both ends of the sheet data.
    window = 64 * 1024
    refs = _REF.findall(data, start, start + window) + _REF.findall(data, max(start, len(data) - window))
    if refs:
        guesses.append(SheetExtent(max(map(int, {r for _, r in refs})),
                                   max(map(column_number, {c for c, _ in refs}))))
        # Those cells exist (with content): a sheet at least that large is refused at once.
        check_extent(sheet, guesses[-1], limits)
    for guess in guesses:
        if (0 < guess.rows <= limits.max_rows and 0 < guess.columns <= limits.max_columns
                and guess.cells <= limits.max_cells
                and (prefixed is False or _PREFIXED_CELL.search(data, start) is None)
                and _outside(guess.rows, guess.columns).search(data, start) is None):
            return guess
    extent = _walk_extent(data, start)
    check_extent(sheet, extent, limits)
    return extent


def column_number(letters: bytes | str) -> int:
    if isinstance(letters, str):
        letters = letters.encode()
    number = 0
    for byte in letters.upper():
        number = number * 26 + (byte - 64)
    return number


def column_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@lru_cache(maxsize=64)
def _outside(rows: int, columns: int) -> re.Pattern:
    """A cell start tag NOT of the form `<c r="REF"` with REF within A1:(columns)(rows)."""
    inside = _upto_letters(column_letters(columns)) + _upto_digits(str(rows))
    return re.compile(_CELL_START + rb'(?!\sr="' + inside.encode() + rb'")')


def _upto_digits(top: str) -> str:
    """Regex for the decimal numbers 1..top without leading zeros."""
    parts = []
    if len(top) > 1:  # possessive: a longer number is never re-read shorter (a `"` follows)
        parts.append(r"[1-9]\d{0,%d}+" % (len(top) - 2))
    parts.append(_lex_range("1" + "0" * (len(top) - 1), top, "0", "9"))
    return "(?:" + "|".join(parts) + ")"


def _upto_letters(top: str) -> str:
    """Regex for the column letters A..top."""
    parts = []
    if len(top) > 1:  # possessive, as for the digits (digits follow the letters)
        parts.append("[A-Z]{1,%d}+" % (len(top) - 1))
    parts.append(_lex_range("A" * len(top), top, "A", "Z"))
    return "(?:" + "|".join(parts) + ")"


def _lex_range(low: str, high: str, first: str, last: str) -> str:
    """Regex for the strings of len(low) between low and high (same length) over first..last."""
    if low == high:
        return re.escape(low)
    if len(low) == 1:
        return f"[{low}-{high}]"
    rest = len(low) - 1
    if low[0] == high[0]:
        return low[0] + _lex_range(low[1:], high[1:], first, last)
    parts = [low[0] + _lex_range(low[1:], last * rest, first, last)]
    if ord(high[0]) - ord(low[0]) > 1:
        parts.append(f"[{chr(ord(low[0]) + 1)}-{chr(ord(high[0]) - 1)}][{first}-{last}]{{{rest}}}")
    parts.append(high[0] + _lex_range(first * rest, high[1:], first, last))
    return "(?:" + "|".join(parts) + ")"


def parse_ref(ref: bytes) -> tuple[int, int] | None:
    """(row, column), 1-based, of a cell reference as calamine reads it (case-insensitive
    letters then digits), or None where calamine would refuse it."""
    match = re.fullmatch(rb"([A-Za-z]+)(\d+)", ref)
    if not match:
        return None
    return int(match.group(2)), column_number(match.group(1))


def _attr_r(attributes: bytes) -> bytes | None:
    match = _ATTR_R.search(attributes)
    if not match:
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2)
    return None if b"&" in value else value  # calamine ignores an r it would have to unescape


def _walk_extent(data: bytes, start: int, wanted: dict[int, tuple[int, int]] | None = None) -> SheetExtent:
    """Place every cell as calamine does; `wanted` (cell start offset -> position) is filled in."""
    row_index = col_index = 0  # 0-based, like calamine's
    max_row = max_col = 0
    in_cell = False
    for match in _TAG.finditer(data, start):
        closing, name, attributes, empty = match.groups()
        if in_cell:  # calamine reads a cell's content up to its </c>, whatever it holds
            if closing and name == b"c":
                in_cell = False
            continue
        if name == b"row":
            if closing:
                row_index += 1
                col_index = 0
            elif not empty:
                ref = _attr_r(attributes)
                if ref is not None and ref.isdigit():
                    row_index = max(int(ref) - 1, 0)
            continue
        if closing or empty:
            continue  # <c .../> is no cell to calamine
        ref = _attr_r(attributes)
        position = parse_ref(ref) if ref is not None else None
        if position is not None:
            row, col = position[0] - 1, position[1] - 1
            col_index = col
        else:
            row, col = row_index, col_index
        col_index += 1
        in_cell = True
        max_row, max_col = max(max_row, row + 1), max(max_col, col + 1)
        if wanted is not None and match.start() in wanted:
            wanted[match.start()] = (row + 1, col + 1)
    return SheetExtent(max_row, max_col)


def cell_positions(data: bytes, offsets: list[int]) -> dict[int, tuple[int, int]]:
    """(row, column), 1-based, of the cells starting at `offsets`, placed as calamine does."""
    match = _SHEET_DATA.search(data)
    wanted: dict[int, tuple[int, int]] = dict.fromkeys(offsets, (0, 0))
    _walk_extent(data, match.start() if match else 0, wanted)
    return {offset: position for offset, position in wanted.items() if position != (0, 0)}


def assert_defusedxml_in_force() -> None:
    """openpyxl expands XML entities unless defusedxml is installed: refuse to run without it."""
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:  # pragma: no cover - defusedxml is a hard dependency
        raise RuntimeError("defusedxml is not in force for openpyxl; reinstall the package")
