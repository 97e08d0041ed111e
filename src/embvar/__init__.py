"""embvar: why do the embeddings your Keras model learns vary between runs?"""

from embvar.errors import EmbvarError

__version__ = "0.1.0"

__all__ = ["EmbvarError", "__version__"]
