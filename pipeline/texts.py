"""One way to say a thing in two languages, the same for every command and message.

HR reads Chinese; the English beside it is for the auditor, the vendor and the search engine.
`--lang zh` (the default) gives Chinese with English beside it; `--lang en` gives English only.
"""

from __future__ import annotations

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"


def say(zh: str, en: str, lang: str = DEFAULT_LANG, sep: str = " ") -> str:
    """English alone with `en`; otherwise the Chinese, then `sep`, then the English."""
    return en if lang == "en" else f"{zh}{sep}{en}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """"1 error", "2 errors" (`nouns` for an irregular plural: "1 employee", "3 people")."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


__all__ = ["DEFAULT_LANG", "LANGS", "plural", "say"]
