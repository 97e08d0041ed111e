"""User-item interactions: the table every recommender run trains on.

IDs map to rows in sorted order (``numpy.unique``), never in set or
dictionary-insertion order, so the mapping is the same in every process,
whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embvar.errors import DataError

__all__ = [
    "Interactions",
    "interactions_from_frame",
    "read_interactions_table",
    "USER_COLUMNS",
    "ITEM_COLUMNS",
    "RATING_COLUMNS",
    "TIMESTAMP_COLUMNS",
]

# Column names accepted for each role, first match wins.
USER_COLUMNS = ("user", "user_id", "userId", "userid", "UserID")
ITEM_COLUMNS = ("item", "item_id", "itemId", "itemid", "movieId", "movie_id", "MovieID")
RATING_COLUMNS = ("rating", "ratings", "score", "Rating")
TIMESTAMP_COLUMNS = ("timestamp", "time", "ts", "Timestamp")


@dataclass(frozen=True, eq=False)
class Interactions:
    """A table of (user, item, rating) interactions with ids mapped to rows.

    Attributes
    ----------
    users, items : ndarray of shape (n_interactions,), int32
        Row indices into ``user_ids`` and ``item_ids``.
    ratings : ndarray of shape (n_interactions,), float32
        The ratings; all ones for implicit feedback.
    timestamps : ndarray of shape (n_interactions,), int64, or None
    user_ids, item_ids : ndarray
        Sorted unique raw ids; row ``r`` of an embedding table is the entity
        ``ids[r]``.
    item_labels : dict of str to ndarray of str
        Human-readable labels per item row (``title``, ``genres``).
    name : str
        Where the data came from, for reports.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_labels: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def fingerprint(self) -> str:
        """Return a SHA-256 of the mapped table, to detect changed data."""
        h = hashlib.sha256()
        for a in (self.users, self.items, self.ratings):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(np.asarray(self.user_ids).astype(str).tobytes())
        h.update(np.asarray(self.item_ids).astype(str).tobytes())
        return h.hexdigest()

    def item_frequency(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Return the number of interactions per item (over ``rows`` if given)."""
        items = self.items if rows is None else self.items[rows]
        return np.bincount(items, minlength=self.n_items)

    def user_frequency(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Return the number of interactions per user (over ``rows`` if given)."""
        users = self.users if rows is None else self.users[rows]
        return np.bincount(users, minlength=self.n_users)


def _pick(
    columns: list[str], candidates: tuple[str, ...], given: str | None
) -> str | None:
    if given is not None:
        return given if given in columns else None
    for c in candidates:
        if c in columns:
            return c
    return None


def _map_ids(raw: pd.Series, what: str) -> tuple[np.ndarray, np.ndarray]:
    values = raw.to_numpy()
    if values.dtype == object:
        values = values.astype(str)
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DataError(
                f"{what} ids must be integers or strings; got non-integer numbers "
                f"such as {values[~(values == np.round(values))][:1]}."
            )
        values = values.astype(np.int64)
    ids, rows = np.unique(values, return_inverse=True)
    return ids, rows.astype(np.int32)


def interactions_from_frame(
    frame: pd.DataFrame,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    label_cols: tuple[str, ...] = ("title", "genres"),
    name: str = "",
) -> Interactions:
    """Return :class:`Interactions` from a data frame of interactions.

    Column roles are found by name (``user``/``userId``/..., ``item``/
    ``movieId``/..., optional ``rating`` and ``timestamp``) unless given.

    Raises
    ------
    DataError
        If a required column is missing, the table is empty, has fewer than
        two users or items, holds non-finite ratings or duplicate
        (user, item) pairs.
    """
    columns = [str(c) for c in frame.columns]
    where = f" in {name}" if name else ""
    ucol = _pick(columns, USER_COLUMNS, user_col)
    icol = _pick(columns, ITEM_COLUMNS, item_col)
    for role, col, given, cands in (
        ("user", ucol, user_col, USER_COLUMNS),
        ("item", icol, item_col, ITEM_COLUMNS),
    ):
        if col is None:
            expected = repr(given) if given else " or ".join(repr(c) for c in cands[:4])
            raise DataError(
                f"the interactions table{where} must have "
                f"{'an' if role == 'item' else 'a'} {role} column "
                f"({expected}); got columns {columns}."
            )
    rcol = _pick(columns, RATING_COLUMNS, rating_col)
    if rating_col is not None and rcol is None:
        raise DataError(
            f"rating column {rating_col!r} not found{where}; got columns {columns}."
        )
    tcol = _pick(columns, TIMESTAMP_COLUMNS, timestamp_col)
    if len(frame) == 0:
        raise DataError(f"the interactions table{where} is empty; it needs rows.")

    user_ids, users = _map_ids(frame[ucol], "user")
    item_ids, items = _map_ids(frame[icol], "item")
    if len(user_ids) < 2 or len(item_ids) < 2:
        raise DataError(
            f"the interactions table{where} must hold at least 2 users and 2 items; "
            f"got {len(user_ids)} user(s) and {len(item_ids)} item(s)."
        )
    if rcol is None:
        ratings = np.ones(len(frame), dtype=np.float32)
    else:
        ratings = pd.to_numeric(frame[rcol], errors="coerce").to_numpy(np.float64)
        with np.errstate(over="ignore"):  # beyond float32: inf, caught below
            ratings = ratings.astype(np.float32)
        bad = ~np.isfinite(ratings)
        if bad.any():
            raise DataError(
                f"column {rcol!r}{where} must hold finite numbers; "
                f"{int(bad.sum())} of {len(ratings)} values are missing, not "
                "numbers or beyond float32's range (3.4e38)."
            )
    key = users.astype(np.int64) * len(item_ids) + items
    n_dup = len(key) - len(np.unique(key))
    if n_dup:
        raise DataError(
            f"the interactions table{where} must hold each (user, item) pair once; "
            f"{n_dup} pairs repeat. Deduplicate it (for example keep the latest)."
        )
    timestamps = None
    if tcol is not None:
        timestamps = pd.to_numeric(frame[tcol], errors="coerce").to_numpy()
        timestamps = np.nan_to_num(timestamps, nan=0).astype(np.int64)

    labels: dict[str, np.ndarray] = {}
    for col in label_cols:
        if col in columns:
            first = (
                pd.Series(frame[col].to_numpy(), index=items).groupby(level=0).first()
            )
            out = np.full(len(item_ids), "", dtype=object)
            out[first.index.to_numpy()] = first.astype(str).to_numpy()
            labels[col] = out.astype(str)
    return Interactions(
        users=users,
        items=items,
        ratings=ratings,
        timestamps=timestamps,
        user_ids=user_ids,
        item_ids=item_ids,
        item_labels=labels,
        name=name,
    )


def read_interactions_table(path: Path, **columns: str | None) -> Interactions:
    """Read any interactions table (CSV with a header, or Parquet)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        elif path.suffix.lower() == ".tsv":
            frame = pd.read_csv(path, sep="\t")
        else:
            frame = pd.read_csv(path, sep=None, engine="python")
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot read interactions table {str(path)!r}: {exc}") from exc
    return interactions_from_frame(frame, name=path.name, **columns)
