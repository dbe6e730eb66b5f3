"""How a table's row count changed across a rehearsal, said the same in the CLI and the app."""

from __future__ import annotations


def row_change(before: int | None, after: int | None) -> str:
    """``new table``, ``dropped``, a signed difference (``+400,000``), or nothing when unchanged."""
    if before is None:
        return "new table"
    if after is None:
        return "dropped"
    return f"{after - before:+,}" if after != before else ""
