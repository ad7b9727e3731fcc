#!/usr/bin/env bash
# Install exactly the dependency floors declared in pyproject.toml into a throwaway venv, then
# run the demo and a subset of the tests with them. Not part of `make test` (it resolves and
# installs a second environment); run it by hand after changing a floor:
#   tools/check_floors.sh [VENV_DIR] [PYTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${1:-/tmp/kpi-floors}
shift || true
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# Every `name>=floor` of [project].dependencies becomes `name==floor`.
"$PYTHON" - > "$VENV/floors.txt" <<'PY'
import re, tomllib
with open("pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
for requirement in project["dependencies"]:
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)", requirement)
    if not match:
        raise SystemExit(f"no floor in {requirement!r}")
    print(f"{match.group(1)}=={match.group(2)}")
PY
echo "floors:"; sed 's/^/  /' "$VENV/floors.txt"
"$VENV/bin/pip" install --quiet -c "$VENV/floors.txt" -e '.[test]'
"$VENV/bin/pip" freeze --exclude-editable | grep -iFf <(sed 's/==.*//' "$VENV/floors.txt") | sed 's/^/installed: /'
# The runtime floors must be what is installed, not something newer the test extra pulled in.
"$VENV/bin/pip" freeze --exclude-editable | tr 'A-Z_' 'a-z-' | sort > "$VENV/installed.txt"
tr 'A-Z_' 'a-z-' < "$VENV/floors.txt" | sort | comm -23 - "$VENV/installed.txt" | sed 's/^/NOT AT FLOOR: /' | grep . && exit 1
"$VENV/bin/python" -c "import msoffcrypto, cryptography, pandera.pandas, xlsxwriter, python_calamine; print('imports ok')"
DEMO=$(mktemp -d)
(cd "$DEMO" && "$VENV/bin/kpi" demo example >demo.log 2>&1) || { cat "$DEMO/demo.log"; exit 1; }
tail -3 "$DEMO/demo.log"
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(tests/test_scoring.py tests/test_exact.py tests/test_fast_sheet.py tests/test_reading.py
                                tests/test_batch.py tests/test_demo.py tests/test_xlsxwriter_contract.py tests/test_cli.py)
"$VENV/bin/pytest" -q -x -p no:cacheprovider "${TESTS[@]}"
