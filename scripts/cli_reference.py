"""Writes the `tfptlm --help` text of every command into the README's command-line reference.

Run after changing a command's options:

    python scripts/cli_reference.py          # rewrites the README section in place
    python scripts/cli_reference.py --check  # exits 1 if the README is out of date

`tests/test_readme.py` checks that every option of every command is in the README.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- cli-reference:start (written by scripts/cli_reference.py; do not edit by hand) -->"
END = "<!-- cli-reference:end -->"


def commands(parser: argparse.ArgumentParser, prefix: str = "tfptlm") -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every leaf command, e.g. ``("tfptlm tokenizer train", ...)``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                found.extend(commands(subparser, f"{prefix} {name}"))
    return found or [(prefix, parser)]


def reference_text() -> str:
    """The Markdown of the reference section, markers included."""
    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width
    from tfptlm.cli import build_parser

    parts = [START, ""]
    for name, parser in commands(build_parser()):
        parts += [f"#### `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts + [END])


def updated_readme(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} section")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    return before + reference_text() + after


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = updated_readme(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print("README.md's command-line reference is out of date: run python scripts/cli_reference.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
