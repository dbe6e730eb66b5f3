"""Printing results as json, yaml or a plain text table (Render CLI's -o), and the options
Render's CLI has on every command (``-o/--output``, ``--confirm``).

As in Render's CLI, both are global options (``render-local -o json jobs list``);
render-local's commands take them after the command too, and the value nearest
the command wins.
"""

from __future__ import annotations

import json
import sys

import click

FORMATS = ("json", "yaml", "text")
# Render's values; ``interactive`` is its default (a terminal UI per command): here, text.
OUTPUT_TYPE = click.Choice(("interactive", *FORMATS), case_sensitive=False)
OUTPUT_HELP = "Output format: json, yaml or text (interactive: text)."


def global_output_option(envvar: str | None = None):
    """``-o`` on a group: kept as given (None if not), for the commands under it."""
    return click.option("-o", "--output", type=OUTPUT_TYPE, envvar=envvar, metavar="FORMAT",
                        help=OUTPUT_HELP + (f" [env: {envvar}]" if envvar else ""))


def output_option(func):
    """``-o`` on a command: its own value, else the nearest group's, else text."""
    return click.option("-o", "--output", type=OUTPUT_TYPE, metavar="FORMAT", callback=_resolve_output,
                        help=OUTPUT_HELP + " Default: the global -o, else text.")(func)


def _resolve_output(ctx: click.Context, _param, value: str | None) -> str:
    return resolve_output(ctx, value)


def resolve_output(ctx: click.Context, value: str | None) -> str:
    """``value``, else the nearest enclosing group's ``-o``; ``interactive`` and nothing mean text."""
    while value is None and ctx.parent is not None:
        ctx = ctx.parent
        value = ctx.params.get("output")
    value = (value or "text").lower()
    return "text" if value == "interactive" else value


def global_confirm_option(func):
    return click.option("--confirm", is_flag=True, help="Skip all confirmation prompts.")(func)


def confirm_option(func):
    """``--confirm`` on a command, also true when given before the command."""
    return click.option("--confirm", is_flag=True, callback=_resolve_confirm, help="Do not ask.")(func)


def _resolve_confirm(ctx: click.Context, _param, value: bool) -> bool:
    while not value and ctx.parent is not None:
        ctx = ctx.parent
        value = bool(ctx.params.get("confirm"))
    return value


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
