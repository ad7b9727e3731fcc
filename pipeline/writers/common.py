"""What every workbook we write shares: safe options, fixed properties, CJK-aware widths, names.

Safe options: input text never becomes a formula or a link. Fixed properties: the same inputs
give byte-identical files (xlsxwriter stamps `now` unless told otherwise).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import unicodedata
import zipfile
from functools import lru_cache

import xlsxwriter
import xlsxwriter.workbook

# A fixed, timezone-aware creation time: a naive date would be silently replaced by now.
FIXED_CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
FONT = "Microsoft YaHei"  # falls back to any CJK font in WPS/LibreOffice (Noto Sans CJK here)

WORKBOOK_OPTIONS = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "nan_inf_to_errors": True,
    "in_memory": True,
}


# zlib level 1 instead of the default 6: a quarter of the batch's writing time was zlib
# compressing ten thousand small sheets; level 1 takes 40% of that time, for files about 10%
# larger (the 10,000-employee batch's outputs: 72.9 MB → 80.2 MB). Any level opens the same.
ZIP_LEVEL = 1


class FastZipFile(zipfile.ZipFile):
    """The ZipFile xlsxwriter packs workbooks with, deflating at `ZIP_LEVEL`.

    xlsxwriter has no compression option and passes each part as a ZipInfo (whose level the
    ZipFile's own `compresslevel` does not reach), so the level goes in through the per-part
    argument of the two public methods it calls. A workbook is packed in memory and written to
    its file at once: packing straight into the file cost two seeks (so two system calls) for
    each of the workbook's hundreds of parts."""

    def __init__(self, file, mode="r", *args, **kwargs):
        self._target = None
        if mode == "w" and isinstance(file, (str, os.PathLike)):
            self._target, file = file, io.BytesIO()
        self._buffer = file
        super().__init__(file, mode, *args, **kwargs)

    def close(self):
        super().close()
        if self._target is not None:
            target, self._target = self._target, None
            with open(target, "wb") as fh:
                fh.write(self._buffer.getbuffer())
            self._buffer = None

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        return super().writestr(zinfo_or_arcname, data, compress_type,
                                ZIP_LEVEL if compresslevel is None else compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        return super().write(filename, arcname, compress_type, ZIP_LEVEL if compresslevel is None else compresslevel)


def at_zip_level(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """`info` set to deflate at ZIP_LEVEL when written through ZipFile.open (which, unlike
    writestr, takes no level): the attribute is public from Python 3.13, private before."""
    info.compress_type = zipfile.ZIP_DEFLATED
    setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", ZIP_LEVEL)
    return info


# Every workbook of the process: xlsxwriter's Workbook looks the name up when it closes.
xlsxwriter.workbook.ZipFile = FastZipFile


def new_workbook(path, title: str = "", *, constant_memory: bool = False) -> xlsxwriter.Workbook:
    """A workbook with safe string handling and deterministic document properties."""
    options = dict(WORKBOOK_OPTIONS)
    if constant_memory:
        options["constant_memory"] = True
        options.pop("in_memory")
    workbook = xlsxwriter.Workbook(str(path), options)
    workbook.set_properties(
        {"title": title, "author": "kpi-pipeline", "company": "", "created": FIXED_CREATED}
    )
    workbook.formats[0].set_font_name(FONT)
    workbook.formats[0].set_font_size(10)
    return workbook


def close_workbook(workbook: xlsxwriter.Workbook) -> None:
    """Close, then cut the one reference cycle xlsxwriter leaves: each sheet keeps its workbook's
    `add_format`. Without the cycle the finished workbook is freed at once by reference counting,
    which the batch relies on while it writes with the garbage collector paused."""
    workbook.close()
    for sheet in workbook.worksheets():
        sheet.workbook_add_format = None


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def display_width(text: object) -> int:
    """Columns a string needs in Excel: wide (CJK) characters count twice."""
    if text is None:
        return 0
    text = str(text)
    if text.isascii():  # most cells: one column a character
        return max(map(len, text.split("\n"))) if "\n" in text else len(text)
    return _text_width(text)


@lru_cache(maxsize=1 << 16)
def _text_width(text: str) -> int:
    """`display_width` of a text with wide characters (names and labels recur on every sheet)."""
    width = 0
    for line in text.split("\n"):
        wide = sum(_is_wide(ch) for ch in _NON_ASCII.findall(line))
        width = max(width, len(line) + wide)
    return width


@lru_cache(maxsize=None)
def _is_wide(ch: str) -> bool:
    """A wide (W) or full-width (F) character; a company's texts use a few thousand at most."""
    return unicodedata.east_asian_width(ch) in "WF"


def fit_width(values, minimum: int = 6, maximum: int = 60) -> float:
    """A column width that shows the longest of `values` (header included)."""
    widest = max((display_width(v) for v in values), default=0)
    return float(min(max(widest + 2, minimum), maximum))


# Excel forbids []:*?/\ ; we also drop quotes and '!' so formulas never need escaping.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\'!]")


def safe_sheet_name(name: str, taken: set[str], fallback: str = "Sheet") -> str:
    """A valid, unique (case-insensitively) Excel sheet name of at most 31 characters."""
    base = _SHEET_FORBIDDEN.sub("_", unicodedata.normalize("NFKC", str(name))).strip().lstrip("=+-@")
    base = "".join(ch for ch in base if ch.isprintable()) or fallback
    if base.lower() == "history":  # reserved by Excel
        base = f"{base}_"
    candidate = base[:31]
    counter = 2
    while candidate.lower() in taken:
        suffix = f"~{counter}"
        candidate = base[: 31 - len(suffix)] + suffix
        counter += 1
    taken.add(candidate.lower())
    return candidate


_FILE_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_WINDOWS_RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}


def safe_file_stem(name: str, fallback: str = "unnamed", max_length: int = 80) -> str:
    """A file name stem safe on Windows, macOS and Linux: no separators, `..`, reserved names."""
    text = unicodedata.normalize("NFKC", str(name))
    text = _FILE_FORBIDDEN.sub("_", text)
    text = "".join(ch for ch in text if ch.isprintable())
    text = text.strip().strip(".").strip()
    text = re.sub(r"\.{2,}", "_", text)
    if not text or text.split(".")[0].lower() in _WINDOWS_RESERVED:
        text = f"_{text}" if text else fallback
    return text[:max_length]


def unique_stem(name: str, taken: set[str], fallback: str = "unnamed") -> str:
    """safe_file_stem, made unique case-insensitively among `taken` (which it updates)."""
    stem = safe_file_stem(name, fallback)
    candidate = stem
    counter = 2
    while candidate.lower() in taken:
        candidate = f"{stem}~{counter}"
        counter += 1
    taken.add(candidate.lower())
    return candidate
