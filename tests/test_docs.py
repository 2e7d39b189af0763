"""The README's generated tables match the code: the command-line table matches click, the QC table QC_BITS."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import click
import pytest

from akkd_scale.cli import main
from akkd_scale.conventions import QC_BITS, QC_MEANINGS

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "readme_tables.py"


def _load():
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load()


def test_readme_tables_are_up_to_date():
    diff = tables.drift(tables.README.read_text())
    assert not diff, "README.md drifted from the code; run python scripts/readme_tables.py\n" + diff


def test_cli_table_names_every_command_and_option():
    table = tables.cli_table()
    for name, command in main.commands.items():
        row = next(line for line in table.splitlines()[3:] if line.split("`")[1].split()[1] == name)
        for param in command.params:
            if isinstance(param, click.Option):
                assert min(param.opts, key=len) in row, (name, param.opts)
    assert "MAP.tif\\|rules\\|none" in table  # the run command's --landcover none


def test_qc_table_lists_every_bit_in_order():
    rows = tables.qc_table().splitlines()[2:]
    assert [int(row.split("|")[1]) for row in rows] == sorted(QC_BITS.values()) == [1, 2, 4, 8, 16, 32, 64, 128]
    for name, row in zip(sorted(QC_BITS, key=QC_BITS.get), rows):
        assert f"`{name}`" in row and QC_MEANINGS[name].split(":")[0] in row


def test_the_check_sees_an_edited_row_and_a_new_bit():
    text = tables.README.read_text()
    edited = text.replace("| 16 | `land_cover_from_rules` |", "| 16 | `land_cover_by_rules` |")
    assert edited != text and "land_cover_by_rules" in tables.drift(edited)
    assert tables.drift(text.replace("[--landcover MAP.tif\\|rules\\|none]", "[--landcover MAP.tif\\|rules]"))
    more = tables.qc_table({**QC_BITS, "new_flag": 256}, {**QC_MEANINGS, "new_flag": "a new flag"})
    assert "| 256 | `new_flag` | a new flag |" in more
    with pytest.raises(ValueError, match="new_flag"):
        tables.qc_table({**QC_BITS, "new_flag": 256}, QC_MEANINGS)


def test_each_table_needs_its_own_markers():
    text = tables.README.read_text().replace("<!-- END qc-table -->", "")
    with pytest.raises(ValueError, match="qc-table"):
        tables.render(text)
    assert tables.render(text, {"cli-table": tables.cli_table})  # the CLI table does not depend on the QC one


def test_check_mode_exit_status(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(tables.README.read_text())
    assert tables.main(["--check", "--readme", str(readme)]) == 0
    readme.write_text(readme.read_text().replace("| 1 | `invalid_input` |", "| 1 | `invalid` |"))
    assert tables.main(["--check", "--readme", str(readme)]) == 1
    assert "`invalid`" in capsys.readouterr().out
    assert tables.main(["--readme", str(readme)]) == 0 and tables.main(["--check", "--readme", str(readme)]) == 0
