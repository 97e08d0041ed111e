"""Models embvar trains: the built-in matrix factorization."""

from embvar.models.factorization import (
    EMBEDDING_LAYERS,
    TABLES,
    build_factorization,
    make_optimizer,
)

__all__ = ["EMBEDDING_LAYERS", "TABLES", "build_factorization", "make_optimizer"]
