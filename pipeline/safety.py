"""Checks made before any library opens an input: what is it, and is it safe to read?

openpyxl and calamine trust the file they are given: a 0.5 MB zip can inflate to 0.5 GB, an
encrypted workbook is not a zip at all, and calamine allocates a sheet as one dense block
from its first to its last cell, so two cells (A1 and GR1048576) ask it for gigabytes and a
cell reference like `A99999999999` aborts the process. We look first, with limits HR can
raise in the policy (`limits:`), and every refusal says which limit and how to raise it.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Union

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
MB = 1024 * 1024

# What the checks accept: a path, or the file's bytes already in memory (the run reads each
# input once), or a binary file object.
Source = Union[Path, str, bytes, bytearray, memoryview, BinaryIO]


def _zip_source(source: Source):
    """Something `zipfile.ZipFile` opens: bytes are wrapped, a file object is rewound."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    if isinstance(source, (str, Path)):
        return source
    source.seek(0)
    return source


def _source_bytes(source: Source) -> bytes:
    """The whole file (callers have checked its size against max_file_bytes first)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    source.seek(0)
    return source.read()


def _source_size(source: Source) -> int:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    if isinstance(source, (str, Path)):
        return Path(source).stat().st_size
    return source.seek(0, io.SEEK_END)


@dataclass(frozen=True)
class Limits:
    """How large an input may be. Raise them in policy.yaml (`limits:`) for giant files.

    Memory: a sheet costs about 50 bytes per cell of its used area (calamine's dense block
    plus the Python grid) plus about 100 per cell holding a value, so `max_cells` is what
    bounds memory; the other limits refuse the shapes that only an accident or an attack
    produces. The default admits a sheet filling Excel's 1,048,576 rows up to 10 columns
    (a 932,785 × 6 ratings export peaks at 0.9 GB; a file filled to the limit, 1.6 GB).
    """

    max_file_bytes: int = 200 * MB
    max_uncompressed_bytes: int = 1024 * MB
    min_compression_ratio: float = 0.005  # compressed/uncompressed per member (POI uses 0.01)
    max_members: int = 10_000
    max_sheets: int = 250
    max_rows: int = 1_100_000
    max_columns: int = 200
    max_sheet_bytes: int = 300 * MB  # one sheet's XML (or one CSV file)
    max_cells: int = 10_485_760  # rows × columns from A1 to the last cell, all sheets together
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


def _damaged(exc: BaseException | str) -> UnreadableInput:
    return UnreadableInput(
        f"文件已损坏或不完整(可能未传完):{exc}。请重新从 Excel 另存为 .xlsx 后再放入。",
        f"the file is damaged or truncated (perhaps not fully copied): {exc}. "
        "Save it again from Excel as .xlsx.",
    )


# ------------------------------------------------------------------------------ file formats

XLSX, XLS, CSV = "xlsx", "xls", "csv"
CSV_SUFFIXES = {".csv"}


def check_input_file(path: Path, limits: Limits = Limits(), data: bytes | None = None) -> str:
    """What `path` holds and that it is safe to read: `xlsx` (also .xlsm), `xls` or `csv`.

    Raises UnreadableInput with the reason otherwise. Nothing here parses a workbook: the
    format is told by content (a .xlsx renamed .xls is still a zip), encrypted workbooks are
    recognised inside their OLE2 container, and zip members are sized before inflating.
    `data`: the file's bytes, when the caller has read them already (`path` then only names it).
    """
    try:
        if data is None:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(8)
        else:
            size, head = len(data), bytes(data[:8])
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
    source = path if data is None else data
    if head == OLE2_MAGIC:
        kind = ole2_kind(source, size)
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
        check_workbook_zip(source, size, limits)
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
    workbook with openpyxl (which should take its bytes from `openpyxl_input`). A legacy .xls
    or a CSV was read by the reader but cannot be copied by openpyxl.
    """
    openpyxl_input(path, limits, merges=False)


def _utf16_name_pattern(name: str) -> re.Pattern:
    """A stream name as it sits in a CFB directory (UTF-16LE), in any letter case."""
    parts = []
    for char in name:
        pair = {char.lower().encode("utf-16-le"), char.upper().encode("utf-16-le")}
        parts.append(b"(?:" + b"|".join(re.escape(p) for p in sorted(pair)) + b")")
    return re.compile(b"".join(parts))


_ENCRYPTED_STREAMS = ("encryptedpackage", "encryptioninfo")
_XLS_STREAMS = ("workbook", "book")  # BIFF8 writes `Workbook`, BIFF5 `Book`; others capitalise
_XLS_NAMES = ("Workbook", "Book")  # the spellings calamine finds
_STREAM_PATTERNS = {name: _utf16_name_pattern(name) for name in _ENCRYPTED_STREAMS + _XLS_STREAMS}


def ole2_kind(source: Source, size: int | None = None) -> str:
    """`encrypted`, `xls` or `unknown` for an OLE2 compound file, from its stream names.

    Stream names sit in the directory, UTF-16LE, compared case-insensitively as the format
    says (Crystal Reports writes `WORKBOOK`): an encrypted .xlsx holds `EncryptedPackage`
    and `EncryptionInfo`, a legacy .xls a `Workbook` (BIFF8) or `Book` (BIFF5) stream. The
    directory is read through the file's allocation table; a file too damaged for that is
    searched instead (its first and last 64 KB and the sectors after the header's directory).
    `size` is no longer needed (the whole file is read); it stays for existing callers.
    """
    try:
        names = {entry.name.casefold() for entry in _Cfb(_source_bytes(source)).entries}
    except (ValueError, IndexError, struct.error, OSError):
        names = _stream_names_searched(source)
    if names & set(_ENCRYPTED_STREAMS):
        return "encrypted"
    if names & set(_XLS_STREAMS):
        return XLS
    return "unknown"


def _stream_names_searched(source: Source) -> set[str]:
    data = _source_bytes(source)
    window = 64 * 1024
    parts = [data[:window], data[-window:]]
    if len(data) >= 0x34:
        shift = int.from_bytes(data[0x1E:0x20], "little")
        first_dir = int.from_bytes(data[0x30:0x34], "little")
        if 7 <= shift <= 16 and first_dir < 0xFFFFFFFA:
            offset = (first_dir + 1) << shift
            parts.append(data[offset:offset + window])
    joined = b"".join(parts)
    return {name for name, pattern in _STREAM_PATTERNS.items() if pattern.search(joined)}


@dataclass(frozen=True)
class _CfbEntry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    start: int
    size: int
    offset: int  # of the entry in the file


class _Cfb:
    """A compound file (the container of .xls and of encrypted .xlsx), read just enough to
    list its entries and take one stream out. Every chain is bounded: a damaged or crafted
    allocation table raises ValueError, never loops."""

    END, FREE = 0xFFFFFFFE, 0xFFFFFFFF

    def __init__(self, data: bytes):
        if len(data) < 512 or data[:8] != OLE2_MAGIC:
            raise ValueError("not a compound file")
        self.data = memoryview(data)
        major, _, shift, mini_shift = struct.unpack_from("<HHHH", data, 0x1A)
        if not 7 <= shift <= 16 or not 2 <= mini_shift < shift:
            raise ValueError("bad sector size")
        self.sector = 1 << shift
        self.mini_sector = 1 << mini_shift
        self.major = major
        fat_count, first_dir, _, self.mini_cutoff, first_mini, mini_count, first_difat, difat_count = \
            struct.unpack_from("<IIIIIIII", data, 0x2C)
        sectors = (len(data) + self.sector - 1) // self.sector
        if fat_count > sectors:
            raise ValueError("FAT larger than the file")
        fat_sectors = [v for v in struct.unpack_from("<109I", data, 0x4C)][:fat_count]
        per_difat = self.sector // 4 - 1
        difat, seen = first_difat, 0
        while len(fat_sectors) < fat_count and difat < self.END - 4:
            seen += 1
            if seen > sectors:
                raise ValueError("DIFAT loops")
            values = struct.unpack_from(f"<{per_difat + 1}I", self._sector(difat))
            fat_sectors.extend(values[:per_difat])
            difat = values[per_difat]
        fat = bytearray()
        for index in fat_sectors[:fat_count]:
            fat += self._sector(index)
        self.fat = memoryview(bytes(fat)).cast("I")
        chain = self._chain(first_dir, self.fat)
        directory = b"".join(self._sector(index) for index in chain)
        self.entries: list[_CfbEntry] = []
        for offset in range(0, len(directory) - 127, 128):
            name_len, kind = struct.unpack_from("<HB", directory, offset + 64)
            if kind not in (1, 2, 5) or not 2 <= name_len <= 64:
                continue
            name = bytes(directory[offset:offset + name_len - 2]).decode("utf-16-le", "replace")
            start, size = struct.unpack_from("<II", directory, offset + 116)
            where = (chain[offset // self.sector] + 1) * self.sector + offset % self.sector
            self.entries.append(_CfbEntry(name, kind, start, size, where))
        self._first_mini, self._mini_count = first_mini, mini_count

    def _sector(self, index: int) -> memoryview:
        offset = (index + 1) * self.sector
        if index >= self.END - 4 or offset >= len(self.data):
            raise ValueError(f"sector {index} is outside the file")
        return self.data[offset:offset + self.sector]

    @staticmethod
    def _chain(start: int, table) -> list[int]:
        chain: list[int] = []
        index = start
        while index < _Cfb.END - 4:
            if index >= len(table) or len(chain) >= len(table):
                raise ValueError("broken sector chain")
            chain.append(index)
            index = table[index]
        return chain

    @staticmethod
    def _chain_bytes(start: int, table, unit: int, read, limit: int | None = None) -> bytes:
        out = bytearray()
        index, steps = start, 0
        while index < _Cfb.END - 4:
            steps += 1
            if index >= len(table) or steps > len(table):
                raise ValueError("broken sector chain")
            out += read(index)
            if limit is not None and len(out) >= limit:
                break
            index = table[index]
        return bytes(out)

    def workbook_entry(self) -> _CfbEntry | None:
        """The .xls workbook stream: `Workbook` (BIFF8) before `Book` (BIFF5), the name as
        written before another case of it."""
        found = [e for e in self.entries if e.kind == 2 and e.name.casefold() in _XLS_STREAMS]
        if not found:
            return None
        return min(found, key=lambda e: (_XLS_STREAMS.index(e.name.casefold()), e.name not in _XLS_NAMES))

    def stream(self, entry: _CfbEntry) -> bytes:
        size = entry.size
        if size > len(self.data):
            raise ValueError("stream larger than the file")
        if size < self.mini_cutoff:
            root = next((e for e in self.entries if e.kind == 5), None)
            if root is None:
                raise ValueError("no root entry")
            mini_stream = self._chain_bytes(root.start, self.fat, self.sector, self._sector, root.size)
            mini_fat = memoryview(self._chain_bytes(self._first_mini, self.fat, self.sector, self._sector)).cast("I")

            def mini(index: int) -> bytes:
                offset = index * self.mini_sector
                if offset + self.mini_sector > len(mini_stream):
                    raise ValueError("mini sector outside the mini stream")
                return mini_stream[offset:offset + self.mini_sector]

            return self._chain_bytes(entry.start, mini_fat, self.mini_sector, mini, size)[:size]
        return self._chain_bytes(entry.start, self.fat, self.sector, self._sector, size)[:size]


# ------------------------------------------------------------------------------ legacy .xls

_XLS_CELL_RECORDS = {  # BIFF record type -> its minimum length for calamine to take the cell
    0x0203: 14,  # Number
    0x0204: 6,  # Label
    0x0205: 8,  # BoolErr
    0x027E: 10,  # RK
    0x00FD: 10,  # LabelSst
    0x0006: 20,  # Formula (a cell and a formula at the same place)
}


def check_xls_sheets(source: Source, limits: Limits) -> None:
    """Every sheet of a legacy .xls against the limits, from its BIFF records, before calamine
    sees the file: calamine reserves memory for the extent a sheet's DIMENSIONS record
    declares and then builds the whole block between its first and last cell, so one
    declared or one far cell costs it gigabytes (or aborts the process) before any check
    after it could refuse the sheet. Also refused: a shared-string count no file of this size
    can hold (calamine would reserve memory for it)."""
    try:
        cfb = _Cfb(_source_bytes(source))
        entry = cfb.workbook_entry()
        stream = cfb.stream(entry) if entry is not None else None
    except (ValueError, IndexError, struct.error) as exc:
        raise _damaged(f"compound file: {exc}") from None
    if stream is None:
        return  # calamine says what is wrong
    biff8, codepage = True, None
    sheets: list[tuple[int, bytes]] = []
    for kind, start, length in _biff_records(stream, 0):
        body = stream[start:start + length]
        if kind == 0x0809 and length >= 2:  # BOF
            biff8 = struct.unpack_from("<H", body)[0] not in (0x0500, 0x0400, 0x0300, 0x0200, 0x0002, 0x0007)
        elif kind == 0x0042 and length >= 2:
            codepage = struct.unpack_from("<H", body)[0]
        elif kind == 0x0085 and length >= 6:  # BoundSheet: where the sheet's records start
            sheets.append((struct.unpack_from("<I", body)[0], body[6:]))
        elif kind == 0x00FC and length >= 8:  # SST
            count = struct.unpack_from("<i", body, 4)[0]
            if not 0 <= count <= len(stream):
                raise _damaged(f"shared strings table declares {count:,} strings")
    total = 0
    for offset, raw_name in sheets:
        if offset >= len(stream):
            continue  # calamine refuses it
        name = _biff_sheet_name(raw_name, biff8, codepage)
        max_row = max_col = -1
        merges = 0
        for kind, start, length in _biff_records(stream, offset):
            if kind in _XLS_CELL_RECORDS:
                if length >= _XLS_CELL_RECORDS[kind]:
                    row, col = struct.unpack_from("<HH", stream, start)
                    max_row, max_col = max(max_row, row), max(max_col, col)
            elif kind == 0x00BD and length >= 6:  # MulRk: one row, a run of columns
                row, _ = struct.unpack_from("<HH", stream, start)
                last = struct.unpack_from("<H", stream, start + length - 2)[0]
                max_row, max_col = max(max_row, row), max(max_col, last)
            elif kind == 0x0200:  # Dimensions: calamine reserves room for what it declares
                _check_declared_dimensions(name, stream[start:start + length], limits)
            elif kind == 0x00E5 and length >= 2:  # MergedCells
                merges += struct.unpack_from("<H", stream, start)[0]
        extent = SheetExtent(max_row + 1, max_col + 1)
        check_extent(name, extent, limits)
        total += extent.cells
        check_workbook_cells(total, limits)
        check_merged_ranges(name, merges, limits)


def normalised_xls(source: Source) -> bytes | None:
    """The .xls with its workbook stream named as calamine looks for it, or None when it is.

    Compound-file names are case-insensitive and some programs (Crystal Reports) write
    `WORKBOOK` or `BOOK`, which calamine does not find. The stream `check_xls_sheets` checks
    is renamed `Workbook` (or `Book`) in a copy; any other stream of those names is renamed
    out of the way, so what calamine reads is what was checked."""
    data = _source_bytes(source)
    try:
        cfb = _Cfb(data)
        chosen = cfb.workbook_entry()
    except (ValueError, IndexError, struct.error):
        return None
    if chosen is None:
        return None
    renames = {}
    for entry in cfb.entries:
        if entry.kind != 2 or entry.name.casefold() not in _XLS_STREAMS:
            continue
        if entry == chosen:
            canonical = _XLS_NAMES[_XLS_STREAMS.index(entry.name.casefold())]
            if entry.name != canonical:
                renames[entry.offset] = canonical
        else:
            renames[entry.offset] = "_" + entry.name[1:]  # same length: the directory stays valid
    if not renames:
        return None
    patched = bytearray(data)
    for offset, name in renames.items():
        encoded = name.encode("utf-16-le")
        patched[offset:offset + len(encoded)] = encoded
    return bytes(patched)


def _biff_records(stream: bytes, offset: int):
    """(type, data offset, data length) of each BIFF record from `offset` to its EOF record."""
    end = len(stream)
    while offset + 4 <= end:
        kind, length = struct.unpack_from("<HH", stream, offset)
        start = offset + 4
        if start + length > end:
            return
        yield kind, start, length
        if kind == 0x000A:  # EOF: calamine stops at the first, as here
            return
        offset = start + length


def _biff_sheet_name(raw: bytes, biff8: bool, codepage: int | None) -> str:
    """A BoundSheet name, for messages only."""
    if not raw:
        return "?"
    count = raw[0]
    if biff8 and len(raw) >= 2:
        text = raw[2:2 + 2 * count].decode("utf-16-le", "replace") if raw[1] & 1 else raw[2:2 + count].decode("latin-1")
    else:
        codec = "utf-16-le" if codepage == 1200 else f"cp{codepage}" if codepage else "latin-1"
        try:
            text = raw[1:1 + count].decode(codec, "replace")
        except LookupError:
            text = raw[1:1 + count].decode("latin-1")
    return text.replace("\0", "") or "?"


def _check_declared_dimensions(sheet: str, body: bytes, limits: Limits) -> None:
    """What a DIMENSIONS record makes calamine reserve, computed as calamine computes it."""
    if len(body) == 10:
        first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", body)
    elif len(body) == 14:
        first_row, last_row, first_col, last_col = struct.unpack_from("<IIHH", body)
    else:
        return  # calamine refuses the record
    if last_row < 1 or last_col < 1:
        return  # calamine reserves one cell
    if first_row > last_row - 1 or first_col > last_col - 1:
        raise _damaged(f"sheet '{sheet}' declares its rows {first_row + 1}-{last_row} "
                       f"and columns {first_col + 1}-{last_col} backwards")
    if (last_row - first_row) * (last_col - first_col) > limits.max_cells:
        check_extent(sheet, SheetExtent(last_row, last_col), limits)  # refuses it


# ------------------------------------------------------------------------------ zip

_XML_MEMBER = re.compile(r"\.(xml|rels|vml)$", re.IGNORECASE)


def part_key(name: str) -> str:
    """A zip member's name as calamine matches a part name to it: `\\` read as `/`, ASCII
    letters in either case."""
    raw = name.replace("\\", "/").encode("utf-8", "surrogatepass")
    return raw.lower().decode("utf-8", "surrogatepass")


class PackageParts:
    """An archive's members by part name, found the way calamine finds them: in either ASCII
    case, with either slash, the first of two equal names. What the scans check is then what
    calamine reads."""

    def __init__(self, archive: zipfile.ZipFile):
        self.infos = archive.infolist()
        self.by_key: dict[str, zipfile.ZipInfo] = {}
        self.duplicated = False
        for info in self.infos:
            key = part_key(info.filename)
            if key in self.by_key:
                self.duplicated = True
            else:
                self.by_key[key] = info

    def get(self, part: str) -> zipfile.ZipInfo | None:
        return self.by_key.get(part_key(part))

    def member(self, part: str) -> zipfile.ZipInfo:
        """The member of a part known to be there (KeyError if it is not)."""
        info = self.get(part)
        if info is None:
            raise KeyError(f"There is no item named {part!r} in the archive")
        return info

    def read(self, archive: zipfile.ZipFile, part: str) -> bytes:
        return archive.read(self.member(part))


def resolve_target(base: str, target: str) -> str:
    """The part a relationship target names, from the folder `base` of the part declaring it
    (`/x` is from the package root)."""
    target = target.strip()
    path = target[1:] if target.startswith("/") else posixpath.join(base, target)
    path = posixpath.normpath(path) if path else ""
    return "" if path in (".", "..") or path.startswith("../") else path.lstrip("/")


_RELATIONSHIP = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?Relationship\b[^>]*>")
_ATTRIBUTE = re.compile(rb"""([\w:.\-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _relationships(rels_xml: bytes) -> list[tuple[re.Match, dict[str, str]]]:
    """Each <Relationship> tag of a .rels part and its attributes (entities left as written)."""
    xml = _as_narrow(rels_xml)
    found = []
    for match in _RELATIONSHIP.finditer(xml):
        attributes = {name.decode("latin-1"): (a if b is None else b).decode("utf-8", "replace")
                      for name, a, b in ((m.group(1), m.group(2), m.group(3)) for m in _ATTRIBUTE.finditer(match.group(0)))}
        found.append((match, attributes))
    return found


def _workbook_part(archive: zipfile.ZipFile, members: PackageParts) -> str | None:
    """The workbook's part: where the package relationships (`_rels/.rels`) put it, else the
    usual `xl/workbook.xml` (or `xl/workbook.bin`); None when there is none."""
    rels = members.get("_rels/.rels")
    if rels is not None and rels.file_size <= MB:
        try:
            declared = _relationships(archive.read(rels))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError):
            declared = []
        for _, attributes in declared:
            if attributes.get("Type", "").endswith("/officeDocument") and attributes.get("TargetMode") != "External":
                part = resolve_target("", attributes.get("Target", ""))
                if part and members.get(part) is not None:
                    return part_key(part)
                break
    for usual in ("xl/workbook.xml", "xl/workbook.bin"):
        if members.get(usual) is not None:
            return usual
    return None


def check_workbook_zip(path: Source, size: int, limits: Limits) -> None:
    """Sizes, ratios, CRCs and XML prologs of an OOXML zip, without inflating anything big."""
    try:
        with zipfile.ZipFile(_zip_source(path)) as archive:
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
    # Only now, with the sizes known to be sane, inflate the members to check their CRCs. The
    # sheets are left to the sheet scan, which inflates each of them anyway (reading a member
    # to its end checks its CRC): one inflation per sheet, not two.
    skipped: set[str] = set()
    try:
        with zipfile.ZipFile(_zip_source(path)) as archive:
            index = PackageParts(archive)
            if size < CRC_CHECKED_BELOW:
                skipped = _scanned_parts(archive, index)
                bad = _failing_crc(archive, skipped)
                if bad is not None:
                    raise _crc_refusal(bad)
            workbook = _workbook_part(archive, index)
    except UnreadableInput:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        raise _damaged(exc) from None
    if workbook is None:
        if "EncryptedPackage" in {m.filename for m in members}:
            raise UnreadableInput("工作簿已加密,请去掉密码后另存为 .xlsx", "the workbook is encrypted; remove the password")
        raise UnreadableInput(
            "这是压缩包,但不是 Excel 工作簿(缺少 xl/workbook.xml)",
            "this is a zip file but not an Excel workbook (no xl/workbook.xml)",
        )
    if workbook.endswith(".bin"):
        raise UnreadableInput(
            "不支持 .xlsb 二进制工作簿,请另存为 .xlsx",
            "binary .xlsb workbooks are not supported; save it as .xlsx",
        )
    try:
        with zipfile.ZipFile(_zip_source(path)) as archive:
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


def _scanned_parts(archive: zipfile.ZipFile, members: PackageParts) -> set[str]:
    """The members the sheet scan inflates whatever else it finds: every worksheet the
    workbook's relationships name (`scan_workbook_sheets` goes through all of them). Nothing
    when the relationships cannot be read, or the package is laid out otherwise (the scan
    then reads a rewritten copy): then every member's CRC is checked here."""
    rels = members.get("xl/_rels/workbook.xml.rels")
    if rels is None or members.duplicated:
        return set()
    try:
        data = archive.read(rels)
    except zipfile.BadZipFile:
        return set()
    found = (members.get(part) for part in sheet_part_paths(data))
    return {info.filename for info in found if info is not None}


def _failing_crc(archive: zipfile.ZipFile, skip: set[str]) -> str | None:
    """`ZipFile.testzip` for the members not in `skip`: the name of the first whose CRC fails."""
    for info in archive.infolist():
        if info.filename in skip:
            continue
        try:
            with archive.open(info, "r") as handle:
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
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_WIDE_STARTS = ((b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
                (b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"))
_DECLARED_WIDE = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*[\"'](?:utf-?16|utf-?32|ucs)", re.IGNORECASE)


def _wide_encoding(head: bytes) -> str | None:
    """The codec of XML written in UTF-16 or UTF-32 (known by its byte-order mark or its
    first character, `<`), else None."""
    for start, codec in _BOMS + _WIDE_STARTS:
        if head.startswith(start):
            return codec
    return None


def _narrow(data: bytes, codec: str) -> bytes:
    """UTF-16/32 XML re-encoded as UTF-8, so the byte scans can read its tags."""
    for bom, name in _BOMS:
        if name == codec and data.startswith(bom):
            data = data[len(bom):]
            break
    unit = 4 if "32" in codec else 2
    return bytes(data[:len(data) - len(data) % unit]).decode(codec, "replace").encode("utf-8")


def _as_narrow(data: bytes) -> bytes:
    codec = _wide_encoding(bytes(data[:4]))
    return _narrow(data, codec) if codec else bytes(data)


def xml_prolog_problem(handle) -> str | None:
    """`doctype` when the XML declares a DTD (entities live there), `encoding` when it is in
    no encoding we can read or its prolog is absurdly long, else None.

    A DTD may only stand in the prolog, before the root element: the prolog (XML declaration,
    comments, processing instructions) is read token by token, so a DTD pushed down by a long
    comment is still found, and only the prolog is inflated. XML in UTF-16 or UTF-32 (some
    programs write their customXml parts so) is read through its decoding; the worksheets
    themselves must be UTF-8, which `scan_workbook_sheets` checks.
    """
    data = b""
    while True:
        chunk = handle.read(16 * 1024)
        data += chunk
        codec = _wide_encoding(data[:4])
        if codec is None:
            if b"\x00" in data[:64]:
                return "encoding"  # no encoding we can read: our byte scans could not see its tags
            if _DECLARED_WIDE.match(data[:512]):
                return "encoding"  # says UTF-16 but is not written so: parsers would disagree
        state = _prolog_state(_narrow(data, codec) if codec else data)
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


# ------------------------------------------------------------------------------ layout

def normalised_xlsx(source: Source) -> bytes | None:
    """The workbook rewritten in the layout Excel writes, or None when it is laid out so.

    Other programs write valid packages that some readers cannot follow: member names with
    backslashes (`xl\\worksheets\\sheet1.xml`), the workbook part elsewhere than
    `xl/workbook.xml` (declared in `_rels/.rels`), two members whose names differ only in
    case. calamine follows some of these and openpyxl none; our scans must check exactly the
    parts the reader loads. So such a package is rewritten in memory: names with `/`, the
    first of equal names kept, the workbook and the parts it names moved under `xl/` (its
    relationships rewritten to point at them). Members are copied compressed, as they are.
    """
    with zipfile.ZipFile(_zip_source(source)) as archive:
        members = PackageParts(archive)
        workbook = _workbook_part(archive, members)
        backslash = any("\\" in info.filename for info in members.infos)
        relocated = workbook is not None and workbook != "xl/workbook.xml"
        if not (backslash or members.duplicated or relocated):
            return None
    data = _source_bytes(source)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = PackageParts(archive)
        renamed = _layout_names(archive, members, workbook if relocated else None)
        replaced = _rewritten_references(archive, members, renamed, workbook if relocated else None)
        return _repackage(data, [(info, renamed[info.filename]) for info in members.by_key.values()], replaced)


def _layout_names(archive: zipfile.ZipFile, members: PackageParts, workbook: str | None) -> dict[str, str]:
    """Member name -> its name in the rewritten package (the kept members only)."""
    names = {info.filename: info.filename.replace("\\", "/") for info in members.by_key.values()}
    if workbook is None:
        return names
    folder = posixpath.dirname(workbook)
    prefix = folder + "/" if folder else ""
    by_key = {part_key(name): name for name in names}
    claimed: dict[str, str] = {}  # new key -> member given that name
    wanted: dict[str, str] = {}  # member -> its new name, special parts first

    def claim(member: str, new: str) -> None:
        stem, dot, ext = new.rpartition(".")
        candidate, n = new, 1
        while part_key(candidate) in claimed:
            n += 1
            candidate = f"{stem}{n}.{ext}" if dot else f"{new}{n}"
        claimed[part_key(candidate)] = member
        wanted[member] = candidate

    claim(by_key[workbook], "xl/workbook.xml")
    workbook_rels = f"{prefix}_rels/{posixpath.basename(workbook)}.rels"
    if workbook_rels in by_key:
        claim(by_key[workbook_rels], "xl/_rels/workbook.xml.rels")
        for _, attributes in _relationships(members.read(archive, workbook_rels)):
            if attributes.get("TargetMode") == "External":
                continue
            part = part_key(resolve_target(folder, attributes.get("Target", "")))
            member = by_key.get(part)
            if member is None or member in wanted:
                continue
            kind = attributes.get("Type", "").rsplit("/", 1)[-1]
            if kind in ("worksheet", "chartsheet", "dialogsheet"):
                new = f"xl/{kind}s/{posixpath.basename(names[member])}"
            elif kind in ("sharedStrings", "styles"):
                new = f"xl/{kind}.xml"
            else:
                continue
            claim(member, new)
            sheet_rels = f"{posixpath.dirname(part)}/_rels/{posixpath.basename(part)}.rels".lstrip("/")
            if sheet_rels in by_key and by_key[sheet_rels] not in wanted:
                claim(by_key[sheet_rels], f"{posixpath.dirname(wanted[member])}/_rels/{posixpath.basename(wanted[member])}.rels")
    for member, name in names.items():  # the rest of the workbook's folder follows it
        if member in wanted:
            continue
        key = part_key(name)
        if key in ("[content_types].xml", "_rels/.rels") or not key.startswith(part_key(prefix)):
            continue
        claim(member, "xl/" + name[len(prefix):])
    for member, name in names.items():  # what else lies under xl/ is moved out of the way
        if member not in wanted and part_key(name).startswith("xl/"):
            claim(member, "unused/" + name)
    for member, name in names.items():
        if member not in wanted:
            claim(member, name)
    return wanted


def _rewritten_references(archive: zipfile.ZipFile, members: PackageParts, renamed: dict[str, str],
                          workbook: str | None) -> dict[str, bytes]:
    """New bytes for the relationship parts and content types that name a moved part."""
    moved = {part_key(old): new for old, new in renamed.items() if part_key(old) != part_key(new)}
    if not moved:
        return {}
    replaced: dict[str, bytes] = {}
    for info in members.by_key.values():
        key = part_key(info.filename)
        if key.endswith(".rels") and info.file_size <= 16 * MB:
            folder = posixpath.dirname(posixpath.dirname(key))  # x/_rels/y.rels describes x/y
            new = _retarget(archive.read(info), folder, moved, root=key == "_rels/.rels" and workbook is not None,
                            every=key in moved)
            if new is not None:
                replaced[info.filename] = new
        elif key == "[content_types].xml" and info.file_size <= 16 * MB:
            xml = utf8_xml(archive.read(info))

            def part_name(match: re.Match) -> bytes:
                old = part_key(match.group(2).decode("utf-8", "replace").lstrip("/"))
                if old not in moved:
                    return match.group(0)
                return match.group(1) + b"/" + _xml_attr(moved[old]) + match.group(3)

            replaced[info.filename] = re.sub(rb"""(PartName\s*=\s*["'])([^"']*)(["'])""", part_name, xml)
    return replaced


def _retarget(rels_xml: bytes, folder: str, moved: dict[str, str], root: bool, every: bool) -> bytes | None:
    """A .rels part with its targets at moved parts (`every`: at any part, the .rels itself
    having moved) made absolute; for the package's own (`root`), the workbook is its one
    officeDocument. None when nothing changes."""
    xml = utf8_xml(rels_xml)
    changed = False
    pieces, last = [], 0
    seen_document = False
    for match, attributes in _relationships(xml):
        tag = match.group(0)
        if attributes.get("TargetMode") != "External":
            is_document = root and attributes.get("Type", "").endswith("/officeDocument")
            if is_document and seen_document:  # a second workbook: only the first is read
                pieces.append(xml[last:match.start()])
                last = match.end()
                changed = True
                continue
            seen_document = seen_document or is_document
            path = resolve_target(folder, attributes.get("Target", ""))
            new = moved.get(part_key(path)) or (path if every and path else None)
            if new is not None:
                target = new if root else "/" + new
                def new_target(m: re.Match[bytes], quoted: bytes = b'"' + _xml_attr(target) + b'"') -> bytes:
                    return m.group(1) + quoted

                tag = re.sub(rb"""(\sTarget\s*=\s*)(?:"[^"]*"|'[^']*')""", new_target, tag, count=1)
                changed = True
        pieces.append(xml[last:match.start()] + tag)
        last = match.end()
    if not changed:
        return None
    pieces.append(xml[last:])
    return b"".join(pieces)


def utf8_xml(data: bytes) -> bytes:
    """XML in UTF-8, its declaration saying so (a UTF-16 part is re-encoded)."""
    if _wide_encoding(bytes(data[:4])) is None:
        return bytes(data)
    narrow = _as_narrow(data)
    return re.sub(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""", rb'\1"UTF-8"', narrow, count=1)


def _xml_attr(text: str) -> bytes:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").encode("utf-8")


def _repackage(data: bytes, members: list[tuple[zipfile.ZipInfo, str]], replaced: dict[str, bytes]) -> bytes:
    """A new zip of `members` under their new names: each copied as it is compressed (its CRC
    still checked when it is read), or deflated anew from `replaced` (old name -> bytes)."""
    out = io.BytesIO()
    central = []
    for info, name in members:
        encoded = name.encode("utf-8")
        if info.filename in replaced:
            body = replaced[info.filename]
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            raw = compressor.compress(body) + compressor.flush()
            crc, method, usize, flags = zlib.crc32(body), zipfile.ZIP_DEFLATED, len(body), 0
        else:
            raw = _compressed_bytes(data, info)
            crc, method, usize, flags = info.CRC, info.compress_type, info.file_size, info.flag_bits & ~0x08
        if len(raw) >= 0xFFFFFFFF or usize >= 0xFFFFFFFF or len(members) >= 0xFFFF:
            raise UnreadableInput("压缩包过大,无法整理其目录结构。请在 Excel 中另存为 .xlsx。",
                                  "the zip is too large to lay out again. Save it as .xlsx in Excel.")
        flags |= 0x800  # names in UTF-8
        year, month, day, hour, minute, second = info.date_time
        dos_time = hour << 11 | minute << 5 | second // 2
        dos_date = max(year - 1980, 0) << 9 | month << 5 | day
        offset = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, dos_time, dos_date,
                              crc, len(raw), usize, len(encoded), 0) + encoded)
        out.write(raw)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, dos_time,
                                   dos_date, crc, len(raw), usize, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def _compressed_bytes(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes as stored (compressed), from its local header."""
    offset = info.header_offset
    header = data[offset:offset + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    start = offset + 30 + name_length + extra_length
    raw = data[start:start + info.compress_size]
    if len(raw) < info.compress_size:
        raise zipfile.BadZipFile(f"member {info.filename} is truncated")
    return raw


# ------------------------------------------------------------------------------ openpyxl's share

# openpyxl binds every merged range cell by cell (one `B1:B1048576` range: minutes and a
# gigabyte) and expands every named cell style against all the others (22,226 of them: half
# a minute). Beyond these, the copy it is given leaves them out.
OPENPYXL_MERGED_RANGES = 2_000  # per sheet
OPENPYXL_MERGED_CELLS = 100_000  # cells under a sheet's merged ranges, all together
OPENPYXL_NAMED_STYLES = 1_000  # <cellStyle> entries in styles.xml


@dataclass
class OpenpyxlInput:
    """A workbook's bytes prepared for openpyxl, and what was left out to bound its work."""

    data: bytes
    sheet_xml_bytes: int  # uncompressed worksheet XML: the size of the copy to expect
    merges_left_out: dict[str, int] = field(default_factory=dict)  # sheet name -> ranges not given
    named_styles_left_out: int = 0


def openpyxl_input(path: Path, limits: Limits = Limits(), *, data: bytes | None = None,
                   merges: bool = True) -> OpenpyxlInput:
    """Check a workbook as the reader does (`check_workbook_file`) and give back the bytes
    for openpyxl: in the layout it can follow (`normalised_xlsx`), its merged ranges and named
    styles within openpyxl's budget (the merged ranges of a sheet beyond it are left out
    whole; `merges=False`: the caller never binds them, nothing to leave out), the named
    styles reduced to `Normal` beyond theirs. Raises UnreadableInput."""
    kind = check_input_file(path, limits, data=data)
    if kind == XLS:
        raise UnreadableInput("这是旧版 .xls 文件(数据已读取,但无法复制其工作表)",
                              "it is a legacy .xls file (its data was read, but its sheets cannot be copied)")
    if kind == CSV:
        raise UnreadableInput("这是 CSV 文本文件(数据已读取,但没有可复制的工作表)",
                              "it is a CSV text file (its data was read, but it has no sheets to copy)")
    data = _source_bytes(path if data is None else data)
    data = normalised_xlsx(data) or data
    stripped: dict[str, tuple[bytes, int]] = {}  # part -> (its XML without merges, ranges left out)

    def each(part: str, xml: bytes, prefixed: bool) -> None:
        if merges and b"mergeCell" in xml:
            plan = _merge_budget(xml)
            if plan is not None:
                stripped[part] = (_with_merges(bytes(xml), plan[0]), plan[1])

    parts = scan_workbook_sheets(data, limits, each=each)
    result = OpenpyxlInput(data, 0)
    replaced: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = PackageParts(archive)
        sheet_keys = {part_key(p) for p in parts.values()}
        result.sheet_xml_bytes = sum(info.file_size for key, info in members.by_key.items()
                                     if key in sheet_keys or key.startswith("xl/worksheets/"))
        names = {part_key(part): name for name, part in parts.items()}
        for part, (xml, left_out) in stripped.items():
            replaced[members.member(part).filename] = xml
            result.merges_left_out[names.get(part_key(part), part)] = left_out
        styles = members.get("xl/styles.xml")
        if styles is not None:
            xml = archive.read(styles)
            count = len(_NAMED_STYLE.findall(xml))
            if count > OPENPYXL_NAMED_STYLES:
                replaced[styles.filename] = _only_normal_style(utf8_xml(xml))
                result.named_styles_left_out = count - 1
    if replaced:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = PackageParts(archive).by_key.values()
            result.data = _repackage(data, [(info, info.filename) for info in infos], replaced)
    return result


_MERGE_CELLS = re.compile(rb"<((?:[A-Za-z_][\w.\-]*:)?)mergeCells\b[^>]*?(?:/>|>.*?</\1mergeCells\s*>)", re.S)
_MERGE_REF = re.compile(rb"""<(?:[A-Za-z_][\w.\-]*:)?mergeCell\b[^>]*?\sref\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_RANGE = re.compile(rb"\$?([A-Za-z]{1,3})\$?(\d{1,7})(?::\$?([A-Za-z]{1,3})\$?(\d{1,7}))?")
_NAMED_STYLE = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?cellStyle[\s/>]")


def _merge_area(ref: bytes) -> int | None:
    """Cells under a merged range (`B1:B1048576`), None for a reference openpyxl cannot take."""
    match = _RANGE.fullmatch(ref.strip())
    if not match:
        return None
    row1, col1 = int(match.group(2)), column_number(match.group(1))
    row2, col2 = (int(match.group(4)), column_number(match.group(3))) if match.group(3) else (row1, col1)
    if not (1 <= row1 <= 1_048_576 and 1 <= row2 <= 1_048_576 and 1 <= col1 <= 16_384 and 1 <= col2 <= 16_384):
        return None
    return (abs(row2 - row1) + 1) * (abs(col2 - col1) + 1)


def _merge_budget(xml: bytes) -> tuple[list[bytes], int] | None:
    """(merged ranges to keep, how many are left out) when a sheet's merges are beyond
    openpyxl's budget, else None: a range over the cell budget (or unreadable) is left out;
    if the rest still is too many ranges or cells, all are."""
    refs = [a or b for a, b in _MERGE_REF.findall(xml)]
    areas = [_merge_area(ref) for ref in refs]
    kept = [(ref, area) for ref, area in zip(refs, areas) if area is not None and area <= OPENPYXL_MERGED_CELLS]
    if len(kept) > OPENPYXL_MERGED_RANGES or sum(area for _, area in kept) > OPENPYXL_MERGED_CELLS:
        kept = []
    if len(kept) == len(refs):
        return None
    return [ref for ref, _ in kept], len(refs) - len(kept)


def _with_merges(xml: bytes, kept: list[bytes]) -> bytes:
    """The sheet's XML with only `kept` merged ranges (no <mergeCells> at all when none)."""
    done = False

    def replace(match: re.Match) -> bytes:
        nonlocal done
        if done or not kept:
            return b""
        done = True
        prefix = match.group(1)
        cells = b"".join(b"<" + prefix + b'mergeCell ref="' + ref + b'"/>' for ref in kept)
        return (b"<" + prefix + b'mergeCells count="' + str(len(kept)).encode() + b'">' + cells
                + b"</" + prefix + b"mergeCells>")

    return _MERGE_CELLS.sub(replace, xml)


_CELL_STYLE_XFS = re.compile(rb"(<((?:[A-Za-z_][\w.\-]*:)?)cellStyleXfs\b[^>]*?>)(.*?)(</\2cellStyleXfs\s*>)", re.S)
_CELL_STYLES = re.compile(rb"<((?:[A-Za-z_][\w.\-]*:)?)cellStyles\b[^>]*?(?:/>|>.*?</\1cellStyles\s*>)", re.S)
_XF = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?xf\b[^>]*?(?:/>|>.*?</(?:[A-Za-z_][\w.\-]*:)?xf\s*>)", re.S)


def _only_normal_style(xml: bytes) -> bytes:
    """styles.xml with one named style, `Normal`: the cell formats (cellXfs) are untouched."""
    def first_xf(match: re.Match) -> bytes:
        xf = _XF.search(match.group(3))
        open_tag = re.sub(rb"""\scount\s*=\s*(?:"[^"]*"|'[^']*')""", b' count="1"', match.group(1))
        return open_tag + (xf.group(0) if xf else b"") + match.group(4)

    def normal(match: re.Match) -> bytes:
        prefix = match.group(1)
        return (b"<" + prefix + b'cellStyles count="1"><' + prefix
                + b'cellStyle name="Normal" xfId="0" builtinId="0"/></' + prefix + b"cellStyles>")

    return _CELL_STYLES.sub(normal, _CELL_STYLE_XFS.sub(first_xf, xml, count=1), count=1)


# ------------------------------------------------------------------------------ sheets

@dataclass(frozen=True)
class SheetExtent:
    """The grid calamine will build for a sheet: rows × columns from A1 to its last cell."""

    rows: int
    columns: int

    @property
    def cells(self) -> int:
        return self.rows * self.columns


def sheet_parts(archive: zipfile.ZipFile, members: PackageParts | None = None) -> dict[str, str]:
    """Sheet name -> its XML part inside the zip, resolved the way calamine resolves it."""
    from defusedxml import ElementTree as SafeET

    members = members or PackageParts(archive)
    workbook = SafeET.fromstring(members.read(archive, "xl/workbook.xml"))
    rels = SafeET.fromstring(members.read(archive, "xl/_rels/workbook.xml.rels"))
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


def scan_workbook_sheets(path: Source, limits: Limits, each=None) -> dict[str, str]:
    """Check every member calamine may load as a sheet before anything parses it: its size,
    its encoding (UTF-8: the scans read bytes), the extent of its cells (a lying <dimension>
    or one far cell cannot make calamine allocate gigabytes) and its merged ranges; the cells
    of all sheets together against max_cells. Parts are found as calamine finds them (any
    case, either slash); a package laid out otherwise is read through `normalised_xlsx`.

    Each sheet's XML is inflated once (which checks its CRC); `each(part, data, prefixed)`
    sees it (the reader looks for the cells calamine shows blank; `prefixed`: whether any
    prefixed cell or formula tag such as `<x:f>` is in the sheet data). Returns {sheet name: part}.
    """
    from defusedxml.ElementTree import ParseError

    with zipfile.ZipFile(_zip_source(path)) as archive:
        members = PackageParts(archive)
        try:
            parts = sheet_parts(archive, members)
            rels = members.read(archive, "xl/_rels/workbook.xml.rels")
        except (KeyError, ParseError) as exc:
            raise UnreadableInput(
                f"文件已损坏:工作簿目录无法读取({type(exc).__name__})。请在 Excel 中打开并另存为 .xlsx。",
                f"the file is damaged: its list of sheets cannot be read ({type(exc).__name__}). "
                "Open it in Excel and save it again as .xlsx.") from None
        names = {part_key(part): name for name, part in parts.items()}
        crc_checked = _source_size(path) < CRC_CHECKED_BELOW
        # Each part once, named as the workbook names it (the reader looks sheets up so).
        wanted = {part_key(p): p for p in sheet_part_paths(_as_narrow(rels))}
        wanted.update({part_key(p): p for p in parts.values()})
        total = 0
        for key in sorted(wanted):
            part, info = wanted[key], members.get(wanted[key])
            if info is None:
                continue
            label = names.get(key, part)
            check_sheet_size(label, info.file_size, limits)
            data = _inflate_checked(archive, info, crc_checked)
            if _wide_encoding(bytes(data[:4])) or b"\x00" in data[:64]:
                raise _entity_refusal(info.filename, "encoding")
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


def _sheet_data_start(data: bytes | bytearray) -> int:
    match = _SHEET_DATA.search(data)
    return match.start() if match else 0


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytearray:
    """A member's bytes in one buffer of its declared size (ZipFile.read holds them twice)."""
    buffer = bytearray(member.file_size)
    view = memoryview(buffer)
    filled = 0
    with archive.open(member) as handle:
        while filled < len(buffer):
            count = handle.readinto(view[filled:filled + MB])  # type: ignore[attr-defined]  # a ZipExtFile
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


def sheet_extent(data: bytes | bytearray, sheet: str, limits: Limits, prefixed: bool | None = None) -> SheetExtent:
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


def _walk_extent(data: bytes | bytearray, start: int, wanted: dict[int, tuple[int, int]] | None = None) -> SheetExtent:
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
