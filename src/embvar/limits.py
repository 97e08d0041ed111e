"""The largest study embvar accepts, written as data and checked in one place.

``MAX_RUNS`` (in :mod:`embvar.config`) bounds the runs one study plans: a
guard against a typo that multiplies a cross product. ``MAX_TABLE_VALUES``
bounds one embedding table, rows times dimension: 2**26 = 67,108,864
float32 values, 256 MiB a table (for example 1,048,576 rows of dimension
64). A run holds each table about five times while it trains (the table,
its dense gradient and, with Adam, two moment tables, plus a temporary),
so a factorization at the limit needs some 2.5 GiB for its two tables; the
store writes and reads a table with no copy beyond the table itself.

Both are checked before anything is written, so a study above a limit
fails at once with a message saying which table is too large and by how
much, and leaves its directory untouched.
"""

from __future__ import annotations

from embvar.errors import ConfigError

__all__ = ["MAX_TABLE_VALUES", "check_table_size"]

MAX_TABLE_VALUES = 1 << 26


def check_table_size(table: str, rows: int, dim: int, *, context: str = "") -> None:
    """Raise ConfigError if a ``rows`` x ``dim`` table exceeds the limit.

    Parameters
    ----------
    table : str
        The table's name, for the message (``"item_embedding"``).
    rows, dim : int
        Its shape.
    context : str
        Where the shape comes from, appended to the message.
    """
    values = int(rows) * int(dim)
    if values > MAX_TABLE_VALUES:
        raise ConfigError(
            f"{table} would hold {rows:,} rows x dim {dim} = {values:,} values"
            f"{context}; the most one table may hold is {MAX_TABLE_VALUES:,} "
            "(embvar.limits.MAX_TABLE_VALUES, 256 MiB of float32). Lower "
            "model.dim or train on fewer entities."
        )
