"""embvar: why do the embeddings your Keras model learns vary between runs?"""

from embvar.errors import EmbvarError

__version__ = "0.1.0"

__all__ = [
    "EmbvarError",
    "__version__",
    "determinism_audit",
    "diff_manifests",
    "collect_manifest",
    "compare",
    "keras",
]

# Public functions imported on first use, so `import embvar` stays light
# (TensorFlow is imported only by what needs it).
_LAZY = {
    "determinism_audit": "embvar.determinism.audit",
    "diff_manifests": "embvar.manifest",
    "collect_manifest": "embvar.manifest",
    "compare": "embvar.comparison",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "keras":  # embvar.keras.EmbeddingRecorder imports Keras
        import importlib

        return importlib.import_module("embvar.keras")
    raise AttributeError(f"module 'embvar' has no attribute {name!r}")
