"""Generated README tables: the command-line table from click and the QC-bit table from the conventions.

Each table lives between its own marker comments (``<!-- BEGIN cli-table -->`` … ``<!-- END cli-table -->``)
and is rendered on its own, so the README cannot drift from the code it documents:

    python scripts/readme_tables.py           # rewrite the tables in README.md
    python scripts/readme_tables.py --check   # exit 1 and show a diff if README.md is out of date

tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import re
import sys
from pathlib import Path

import click

README = Path(__file__).resolve().parents[1] / "README.md"
PROG = "akkd-scale"
#: Commands in the order a newcomer meets them; commands not named here follow in alphabetical order.
COMMAND_ORDER = ("run", "demo", "quicklook", "export", "simulate", "evaluate", "adapt", "show-versions")
#: Placeholders for option values by click type name (when the option names no metavar, choices or default).
PLACEHOLDERS = {"integer": "N", "integer range": "N", "float": "X", "float range": "X", "path": "PATH", "text": "TEXT"}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (GitHub ends a cell at any unescaped pipe, code spans too)."""
    return text.replace("|", "\\|")


def first_help_line(text: str | None) -> str:
    """The first paragraph of a click help text, on one line."""
    return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())


def _value(option: click.Option) -> str:
    """What the usage shows as an option's value: its metavar, its choices, its default, else its type."""
    if option.metavar:
        return option.metavar
    if isinstance(option.type, click.Choice):
        return "|".join(str(c) for c in option.type.choices)
    if option.default is not None and option.show_default and not callable(option.default):
        return str(option.default)
    return PLACEHOLDERS.get(option.type.name, option.type.name.upper())


def option_usage(option: click.Option) -> str:
    """``--out PATH`` for a required option, ``[--bundle PATH]``, ``[--overwrite]`` otherwise."""
    name = min(option.opts, key=len)
    text = name if option.is_flag or option.count else f"{name} {_value(option)}"
    return text if option.required else f"[{text}]"


def command_usage(name: str, command: click.Command) -> str:
    """Arguments, required options, then the optional ones in declaration order (``--help`` left out)."""
    arguments = [p.make_metavar(click.Context(command)) for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    ordered = [p for p in options if p.required] + [p for p in options if not p.required]
    return " ".join([PROG, name] + arguments + [option_usage(p) for p in ordered])


def command_names(group: click.Group) -> list[str]:
    """The group's commands, known ones in :data:`COMMAND_ORDER`, any others after them."""
    names = [n for n in COMMAND_ORDER if n in group.commands]
    return names + sorted(set(group.commands) - set(names))


def cli_table(group: click.Group | None = None) -> str:
    """Markdown table: the program's own options, then every command's usage and first help line."""
    if group is None:
        from akkd_scale.cli import main as group
    options = [p for p in group.params if isinstance(p, click.Option) and not p.hidden]
    own = " ".join([PROG] + [option_usage(p) for p in options] + ["COMMAND …"])
    own_help = " ".join(
        [first_help_line(group.help)]
        + [f"`{min(p.opts, key=len)}`: {first_help_line(p.help)}" for p in options if p.help]
    )
    rows = ["| command | what it does |", "|---|---|", f"| `{_cell(own)}` | {_cell(own_help)} |"]
    for name in command_names(group):
        command = group.commands[name]
        rows.append(f"| `{_cell(command_usage(name, command))}` | {_cell(first_help_line(command.help))} |")
    return "\n".join(rows)


def qc_table(bits: dict[str, int] | None = None, meanings: dict[str, str] | None = None) -> str:
    """Markdown table of the ``qc`` bits, by bit value: bit, name (CF ``flag_meanings``), meaning."""
    if bits is None or meanings is None:
        from akkd_scale.conventions import QC_BITS, QC_MEANINGS

        bits, meanings = QC_BITS if bits is None else bits, QC_MEANINGS if meanings is None else meanings
    missing = sorted(set(bits) - set(meanings))
    if missing:
        raise ValueError(f"QC bits without a meaning in QC_MEANINGS: {missing}")
    rows = ["| bit | name | meaning |", "|---|---|---|"]
    rows += [
        f"| {value} | `{name}` | {_cell(meanings[name])} |"
        for name, value in sorted(bits.items(), key=lambda kv: kv[1])
    ]
    return "\n".join(rows)


#: Marker name → renderer; each block is rendered independently of the others.
TABLES = {"cli-table": cli_table, "qc-table": qc_table}


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` set to ``body``."""
    pattern = re.compile(rf"(<!-- BEGIN {re.escape(name)} -->\n)(.*?)(<!-- END {re.escape(name)} -->)", re.DOTALL)
    found = pattern.findall(text)
    if len(found) != 1:
        raise ValueError(
            f"README needs exactly one '<!-- BEGIN {name} -->' … '<!-- END {name} -->' block, found {len(found)}"
        )
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(3), text)


def render(text: str, tables: dict | None = None) -> str:
    """The README text with every generated table up to date."""
    for name, make in (TABLES if tables is None else tables).items():
        text = replace_block(text, name, make())
    return text


def drift(text: str) -> str:
    """A unified diff from ``text`` to its up-to-date form; empty when nothing drifted."""
    return "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), render(text).splitlines(keepends=True), "README.md", "README.md (generated)"
        )
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report drift (exit 1), do not write")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    diff = drift(text)
    if args.check:
        if diff:
            sys.stdout.write(diff)
            print(f"{args.readme} is out of date: run python scripts/readme_tables.py", file=sys.stderr)
        return 1 if diff else 0
    if diff:
        args.readme.write_text(render(text))
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
