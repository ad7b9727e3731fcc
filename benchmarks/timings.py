"""Wall-time checks that `make test` does not make (it runs no timing): run them by hand.

    .venv/bin/python benchmarks/timings.py            # both
    .venv/bin/python benchmarks/timings.py summary    # one

- summary: summary.xlsx for 10,000 employees x 8 indicators (80,000 Details rows) is written
  within 20 s (about 3 s on the machine of RESULTS.md).
- fuzz: each of 300 mutated workbooks (the fuzz test's seeds and mutations) is read within
  10 s: a mutation must never make the reader hang.

Exit 1 naming the check that was too slow.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SUMMARY_LIMIT = 20.0
READ_LIMIT = 10.0


def summary() -> bool:
    from test_summary_book import _large, _write

    scores = _large(10_000)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        _write(Path(folder) / "big.xlsx", scores)
        elapsed = time.perf_counter() - start
    print(f"summary.xlsx, 80,000 detail rows: {elapsed:.1f} s (limit {SUMMARY_LIMIT:.0f} s)")
    return elapsed < SUMMARY_LIMIT


def fuzz(cases: int = 300) -> bool:
    from company import small_company
    from test_fuzz import TEMPLATES, TOKENS, mutate, rezip

    from pipeline.reader import read_workbook

    rng = random.Random(6)
    slowest = (0.0, "")
    with tempfile.TemporaryDirectory() as folder:
        company = small_company(Path(folder) / "inbox", mistake=True, hostile_name=True)
        seeds = [(p.name, p.read_bytes()) for p in TEMPLATES + sorted(company.glob("*.xlsx"))]
        for case in range(cases):
            name, original = rng.choice(seeds)
            mutations = [(rng.choice(["flip", "insert", "delete", "truncate", "splice"]), rng.random(),
                          rng.randrange(256), rng.randint(1, 64), rng.choice(TOKENS)) for _ in range(rng.randint(1, 6))]
            data = (rezip(original, rng.randrange(51), mutations, rng.random() < 0.5) if rng.random() < 0.5
                    else mutate(original, mutations))
            path = Path(folder) / f"case{case}" / name
            path.parent.mkdir()
            path.write_bytes(data)
            start = time.perf_counter()
            read_workbook(path)
            slowest = max(slowest, (time.perf_counter() - start, f"case {case} ({name})"))
    print(f"fuzz, {cases} mutated workbooks: slowest read {slowest[0]:.2f} s, {slowest[1]} (limit {READ_LIMIT:.0f} s)")
    return slowest[0] < READ_LIMIT


CHECKS = {"summary": summary, "fuzz": fuzz}


def main(names: list[str]) -> int:
    failed = [name for name in names or list(CHECKS) if not CHECKS[name]()]
    if failed:
        print(f"too slow: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
