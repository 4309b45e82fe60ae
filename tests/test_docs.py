"""The documentation cannot fall behind the command line.

Every command and every option that `vidrec --help` lists must appear in docs/cli.md: each command as a
heading `### \\`vidrec NAME\\``, each of its options' flags (long and short, `--help` aside) inside that
section, the global options anywhere. The commands and options come from the CLI itself, so a new one
fails here until it is documented. The repository's documentation is self-contained: no file under
docs/, nor README.md, names a design file outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLI_DOC = DOCS / "cli.md"
COMMAND_HEADING = re.compile(r"^###\s+`vidrec\s+([^`\s]+)`\s*$")
ANY_HEADING = re.compile(r"^(#{1,6})\s")


def cli_group():
    """The `vidrec` click group, as typer builds it for `--help`."""
    from app.cli import app

    return typer.main.get_command(app)


def visible_commands(group) -> dict:
    return {name: command for name, command in sorted(group.commands.items()) if not getattr(command, "hidden", False)}


def flags(command) -> list[str]:
    """The flags of a command's visible options, long and short (positional arguments and --help aside)."""
    out = []
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":  # "argument": positional
            continue
        out += [flag for flag in (*param.opts, *param.secondary_opts) if flag != "--help"]
    return out


def command_sections(text: str) -> dict[str, str]:
    """{command name: its section's text}, a section running from `### `vidrec NAME`` to the next heading
    of level 1-3. Lines inside fenced code blocks are never headings."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            match = COMMAND_HEADING.match(line)
            level = ANY_HEADING.match(line)
            if match:
                current = sections.setdefault(match.group(1), [])
                continue
            if level and len(level.group(1)) <= 3:
                current = None
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def mentions(text: str, flag: str) -> bool:
    """Whether `flag` appears as a whole flag (`--seed` is not found in `--seeds`)."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


@pytest.fixture(scope="module")
def cli_doc() -> str:
    assert CLI_DOC.is_file(), f"{CLI_DOC.relative_to(ROOT)} is missing"
    return CLI_DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def group():
    return cli_group()


def test_every_command_has_a_section(group, cli_doc):
    sections = command_sections(cli_doc)
    missing = [name for name in visible_commands(group) if name not in sections]
    assert not missing, "docs/cli.md has no section for: " + ", ".join(
        f"`vidrec {name}` (add a heading: ### `vidrec {name}`)" for name in missing
    )


def test_every_option_is_in_its_commands_section(group, cli_doc):
    sections = command_sections(cli_doc)
    missing = []
    for name, command in visible_commands(group).items():
        section = sections.get(name)
        if section is None:
            continue  # reported by test_every_command_has_a_section
        absent = [flag for flag in flags(command) if not mentions(section, flag)]
        if absent:
            missing.append(f"`vidrec {name}`: {', '.join(absent)}")
    assert not missing, "docs/cli.md does not document these options in their command's section: " + "; ".join(missing)


def test_every_section_names_a_command(group, cli_doc):
    unknown = sorted(set(command_sections(cli_doc)) - set(visible_commands(group)))
    assert not unknown, "docs/cli.md has sections for commands the CLI does not have: " + ", ".join(
        f"`vidrec {name}`" for name in unknown
    )


def test_global_options_are_documented(group, cli_doc):
    wanted = dict.fromkeys([*flags(group), "--data-dir"])
    absent = [flag for flag in wanted if not mentions(cli_doc, flag)]
    assert not absent, "docs/cli.md does not document the global option(s): " + ", ".join(absent)


def test_documentation_does_not_point_outside_the_repository():
    """Every Markdown file the docs or the README name, and every relative link they make, is in the
    repository: the contracts live here, not in a design file somewhere else."""
    files = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
    offenders = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            for name in re.findall(r"[\w./-]+\.md\b", line):
                if not any(p.name == Path(name).name for p in ROOT.rglob("*.md") if ".venv" not in p.parts):
                    offenders.append(f"{path.relative_to(ROOT)}:{number} names {name}")
            for target in re.findall(r"\]\(([^)#\s]+)", line):
                if "://" in target:
                    continue
                resolved = (path.parent / target).resolve()
                if ROOT.resolve() not in resolved.parents or not resolved.exists():
                    offenders.append(f"{path.relative_to(ROOT)}:{number} links {target}")
    assert not offenders, "the documentation must stand alone:\n" + "\n".join(offenders)
