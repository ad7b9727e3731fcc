"""The documentation keeps up with the code.

- README's command table names every `kpi` command and every option of each, read from the
  live click tree (lazy commands included), and names no option a command does not have.
- docs/templates.md is what tools/templates_doc.py writes from pipeline/kinds.py.
- The package cites the docs/ files, not documents the repository does not hold.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ("scoring.md", "templates.md", "outputs.md", "architecture.md")


def _commands(group: click.Group, path: tuple[str, ...] = ("kpi",)):
    """(path, command) of every leaf command, through nested groups."""
    ctx = click.Context(group, info_name=path[-1])
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _long_options(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, click.Option) and not param.hidden
            for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--") and opt != "--help"}


def _table_rows() -> list[str]:
    """The rows of the README's command table (those whose first cell is `kpi …`)."""
    section = README.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `kpi")]


def _rows_of(path: tuple[str, ...]) -> list[str]:
    words = " ".join(path)
    return [row for row in _table_rows() if re.match(rf"\| `{re.escape(words)}[ `]", row)]


def _walk_leaving_lazy_commands_unloaded() -> list:
    """The tree, without leaving diff, verify and trace loaded into the group (other tests rely on
    them being loaded on demand, as in a new process)."""
    before = dict(main.commands)
    try:
        return list(_commands(main))
    finally:
        main.commands.clear()
        main.commands.update(before)


COMMANDS = _walk_leaving_lazy_commands_unloaded()


def test_the_click_tree_is_walked_whole():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"kpi run", "kpi validate", "kpi weights", "kpi templates", "kpi demo", "kpi diff", "kpi verify",
            "kpi trace"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_in_the_readme_table(path, command):
    rows = _rows_of(path)
    assert rows, f"README's command table has no row for `{' '.join(path)}`"
    text = " ".join(rows)
    documented = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    missing = sorted(_long_options(command) - documented)
    assert not missing, f"`{' '.join(path)}`: README's command table does not name {missing}"
    unknown = sorted(documented - _long_options(command))
    assert not unknown, f"`{' '.join(path)}`: README names {unknown}, which the command does not have"


def test_the_group_options_are_in_the_readme_table():
    table = " ".join(_table_rows())
    assert not sorted(o for o in _long_options(main) if o not in table)


def test_every_table_row_is_a_command():
    known = {" ".join(path) for path, _ in COMMANDS} | {"kpi"}
    for row in _table_rows():
        words = re.match(r"\| `([^`]*)`", row).group(1).split()
        prefix = " ".join(w for w in words if re.fullmatch(r"[a-z][a-z-]*", w) and w not in ("en", "zh"))
        assert any(prefix == name or prefix.startswith(name + " ") for name in known), row


def test_templates_doc_is_generated_from_the_kinds():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import templates_doc
    finally:
        sys.path.remove(str(ROOT / "tools"))
    current = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    assert current == templates_doc.render(), "docs/templates.md is stale: run tools/templates_doc.py"
    from pipeline.kinds import KINDS

    for kind in KINDS.values():  # and what it renders names every sheet and field
        for sheet in kind.sheets:
            for field in sheet.fields:
                assert f"`{field.name}`" in current


def test_outputs_doc_names_every_machine_column():
    from pipeline.outputs import (
        DETAIL_COLUMNS,
        DETAIL_EXTRA_COLUMNS,
        TOTAL_COLUMNS,
        TOTAL_EXTRA_COLUMNS,
        TRACKING_DETAIL_COLUMNS,
        UNSCORED_COLUMNS,
    )

    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    columns = DETAIL_COLUMNS + DETAIL_EXTRA_COLUMNS + TRACKING_DETAIL_COLUMNS + TOTAL_COLUMNS + TOTAL_EXTRA_COLUMNS + UNSCORED_COLUMNS
    assert [c for c in columns if f"`{c}`" not in text] == []


def test_docs_exist_and_readme_links_them():
    for name in DOCS:
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert text.startswith("# ") and len(text) > 500, name
        assert f"(docs/{name})" in README, name


def test_the_package_cites_only_documents_it_has():
    cited = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bSPEC\b|\bNOTES\b", line):
                cited.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            for doc in re.findall(r"docs/([\w-]+\.md)", line):
                assert (ROOT / "docs" / doc).exists(), f"{path.relative_to(ROOT)}:{number} cites docs/{doc}"
    assert not cited, "\n".join(cited)
