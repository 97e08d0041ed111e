import keras
import numpy as np

from embvar.config import ModelSpec
from embvar.models.skipgram import SKIPGRAM_TABLES, build_skipgram, skipgram_loss


def test_skipgram_logits_are_word_context_dot_products():
    keras.utils.set_random_seed(0)
    model = build_skipgram(30, ModelSpec(kind="skipgram", dim=4))
    W = model.get_layer("word_embedding").embeddings
    C = model.get_layer("context_embedding").embeddings
    assert (
        [layer.name for layer in model.layers if "embedding" in layer.name]
        == [
            "word_embedding",
            "context_embedding",
        ]
        == list(SKIPGRAM_TABLES)
    )
    assert not np.asarray(C).any()  # contexts start at zero, as in word2vec
    C.assign(np.random.default_rng(1).normal(size=(30, 4)).astype("float32"))
    targets = np.array([3, 7], dtype="int32")
    contexts = np.array([[1, 2, 3], [4, 5, 6]], dtype="int32")
    logits = np.asarray(model.predict([targets, contexts], verbose=0))
    expected = np.einsum("bd,bkd->bk", np.asarray(W)[targets], np.asarray(C)[contexts])
    np.testing.assert_allclose(logits, expected, rtol=1e-5)


def test_skipgram_learns_and_saves_as_a_plain_keras_model(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_skipgram(20, ModelSpec(kind="skipgram", dim=4))
    model.compile(keras.optimizers.Adam(0.05), skipgram_loss())
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 10, 512).astype("int32")
    contexts = np.column_stack([targets + 10, rng.integers(0, 20, (512, 2))])
    labels = np.zeros((512, 3), "float32")
    labels[:, 0] = 1
    loss = model.fit(
        [targets, contexts.astype("int32")], labels, epochs=5, verbose=0
    ).history["loss"]
    assert loss[-1] < 0.7 * loss[0]
    model.save(tmp_path / "sg.keras")
    again = keras.saving.load_model(tmp_path / "sg.keras")
    np.testing.assert_array_equal(
        again.get_layer("word_embedding").embeddings.numpy(),
        model.get_layer("word_embedding").embeddings.numpy(),
    )
