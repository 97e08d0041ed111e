import keras
import numpy as np
import pytest
import tensorflow as tf

from embvar.errors import DataError
from embvar.formats import detect_format, read_embeddings


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained briefly, saved with tf.train.Checkpoint."""
    keras.utils.set_random_seed(5)
    words = keras.Input((), dtype="int32")
    e = keras.layers.Embedding(25, 3, name="word_embedding")(words)
    out = keras.layers.Dense(2, name="dense")(e)
    model = keras.Model(words, out)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.integers(0, 25, 200), rng.normal(size=(200, 2)), epochs=2, verbose=0)
    folder = tmp_path_factory.mktemp("ckpt")
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=model.optimizer), folder, 3
    )
    prefix = manager.save()
    return model, folder, prefix


def test_checkpoint_variable_by_its_name(trained):
    model, folder, prefix = trained
    table = model.get_layer("word_embedding").embeddings.numpy()
    assert detect_format(prefix) == "checkpoint"
    for path in (prefix, prefix + ".index", folder):
        for name in ("word_embedding/embeddings", "word_embedding"):
            emb = read_embeddings(path, variable=name)
            np.testing.assert_array_equal(emb.vectors, table)
            assert emb.table == "word_embedding/embeddings"
            assert emb.ids.tolist()[:2] == ["0", "1"]


def test_checkpoint_variable_by_its_checkpoint_key(trained):
    model, _, prefix = trained
    keys = [k for k, s in tf.train.list_variables(prefix) if s == [25, 3]]
    model_key = next(k for k in keys if "optimizer/_variables" not in k)
    emb = read_embeddings(prefix, variable=model_key)
    np.testing.assert_array_equal(
        emb.vectors, model.get_layer("word_embedding").embeddings.numpy()
    )


def test_checkpoint_without_a_name_lists_the_tables(trained):
    _, _, prefix = trained
    with pytest.raises(DataError, match="holds 2 2-D model variables.*dense/kernel"):
        read_embeddings(prefix)
    with pytest.raises(DataError, match="variable must name a variable of"):
        read_embeddings(prefix, variable="nothing")
    with pytest.raises(DataError, match="must be 2-D"):
        read_embeddings(prefix, variable="dense/bias")
