import keras
import numpy as np
import pytest

from embvar.errors import DataError
from embvar.formats import detect_format, read_embeddings


@keras.saving.register_keras_serializable(package="embvar_tests")
class Scale(keras.layers.Layer):
    """A custom layer: reading the file must not need to import it."""

    def call(self, x):
        return 2.0 * x


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model with two Embedding layers and a nested model, trained briefly."""
    keras.utils.set_random_seed(3)
    users = keras.Input((), dtype="int32")
    items = keras.Input((), dtype="int32")
    u = keras.layers.Embedding(12, 4, name="user_embedding")(users)
    v = keras.layers.Embedding(20, 4, name="item_embedding")(items)
    head = keras.Sequential([keras.layers.Dense(1, name="out")], name="head")
    score = head(Scale()(keras.layers.Concatenate()([u, v])))
    model = keras.Model([users, items], score)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 12, 256), rng.integers(0, 20, 256)]
    model.fit(x, rng.normal(size=(256, 1)), epochs=2, verbose=0)
    folder = tmp_path_factory.mktemp("keras")
    model.save(folder / "model.keras")
    model.save_weights(folder / "model.weights.h5")
    return model, folder


def test_keras_file_layer_by_name_equals_the_trained_weights(trained):
    model, folder = trained
    assert detect_format(folder / "model.keras") == "keras"
    for name in ("user_embedding", "item_embedding"):
        emb = read_embeddings(folder / "model.keras", layer=name)
        np.testing.assert_array_equal(
            emb.vectors, model.get_layer(name).embeddings.numpy()
        )
        assert emb.table == name and emb.ids_from == "rows"
    item = read_embeddings(folder / "model.keras", layer="item_embedding")
    assert item.ids[:3].tolist() == ["0", "1", "2"] and item.n_entities == 20


def test_keras_file_nested_layer_by_outer_and_inner_name(trained):
    model, folder = trained
    kernel = model.get_layer("head").get_layer("out").kernel.numpy()
    for name in ("head/out", "out"):
        emb = read_embeddings(folder / "model.keras", layer=name)
        np.testing.assert_array_equal(emb.vectors, kernel)


def test_keras_file_with_two_embeddings_needs_a_layer_name(trained):
    _, folder = trained
    with pytest.raises(DataError, match="has 2 Embedding layers .user_embedding, item"):
        read_embeddings(folder / "model.keras")
    with pytest.raises(DataError, match="layer must name a layer of"):
        read_embeddings(folder / "model.keras", layer="nope")


def test_keras_weights_file_layer_by_weights_path(trained):
    model, folder = trained
    assert detect_format(folder / "model.weights.h5") == "keras"
    emb = read_embeddings(folder / "model.weights.h5", layer="layers/embedding_1")
    np.testing.assert_array_equal(
        emb.vectors, model.get_layer("item_embedding").embeddings.numpy()
    )


def test_keras_file_ids_from_sibling_file(trained, tmp_path):
    _, folder = trained
    import shutil

    shutil.copy(folder / "model.keras", tmp_path / "m.keras")
    (tmp_path / "m.ids.txt").write_text("".join(f"u{i}\n" for i in range(12)))
    emb = read_embeddings(tmp_path / "m.keras", layer="user_embedding")
    assert emb.ids[0] == "u0" and emb.ids_from.endswith("m.ids.txt")
