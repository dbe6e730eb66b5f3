"""Printing results as json, yaml or a plain text table (Render CLI's -o)."""

from __future__ import annotations

import json
import sys

import click

FORMATS = ("json", "yaml", "text")


def output_option(func):
    return click.option(
        "-o", "--output", type=click.Choice(FORMATS), default="text", show_default=True,
        help="Output format.",
    )(func)


def emit(data, fmt: str, columns: list[tuple[str, str]] | None = None, rows: list[dict] | None = None) -> None:
    """Print ``data`` as JSON/YAML, or ``rows`` (default: data) as a text table."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        table = rows if rows is not None else (data if isinstance(data, list) else [data])
        click.echo(text_table(table, columns or [(k, k) for k in (table[0] if table else {})]))


def text_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    headers = [title for title, _ in columns]
    cells = [["" if row.get(key) is None else str(row.get(key)) for _, key in columns] for row in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def fail(message: str, code: int = 2):
    click.echo(f"render-local: error: {message}", err=True)
    sys.exit(code)
