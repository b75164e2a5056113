"""Neural style transfer (Gatys et al., 2015)."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk
from visionkit.interpret.style import gram_matrix, style_transfer, vgg_style_model


def _pictures(size=32):
    rows, cols = np.mgrid[:size, :size]
    content = np.full((size, size, 3), 60.0, np.float32)
    content[size // 4:3 * size // 4, size // 4:3 * size // 4] = [220, 200, 40]  # a square
    style = np.stack([127 + 120 * np.sin(cols / 2.0 + rows / 3.0),
                      127 + 120 * np.cos(rows / 1.5),
                      127 + 100 * np.sin((cols + rows) / 4.0)], -1).astype(np.float32)
    return content, style


@pytest.fixture(scope="module")
def any_size_cnn():
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    for i, width in enumerate((8, 16, 16)):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                name=f"conv{i + 1}")(x)
        x = keras.layers.MaxPooling2D(2)(x) if i < 2 else x
    return keras.Model(inputs, x, name="any_size_cnn")


def test_gram_matrix_against_a_numpy_loop():
    features = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    expected = np.zeros((2, 4, 4))
    for b in range(2):
        for i in range(4):
            for j in range(4):
                expected[b, i, j] = sum(features[b, y, x, i] * features[b, y, x, j]
                                        for y in range(3) for x in range(5)) / 15
    np.testing.assert_allclose(gram_matrix(features).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_style_transfer_lowers_the_style_loss_compiled_or_not(any_size_cnn, jit_compile):
    content, style = _pictures(32)
    result = style_transfer(content, style[:24], model=any_size_cnn, steps=30,
                            style_layers=["conv1", "conv2", "conv3"], content_layers="conv3",
                            jit_compile=jit_compile, verbose=0)
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert result.style_loss.shape == (30,)
    assert result.style_loss[-1] < 0.5 * result.style_loss[0]
    assert result.content_loss[-1] < 2 * result.content_loss[0]


def test_losses_match_a_reference_computed_by_hand(any_size_cnn):
    """The first recorded losses equal the ones computed from the features directly."""
    import keras

    content, style = _pictures(16)
    result = style_transfer(content, style, model=any_size_cnn, steps=1, noise=0.0,
                            content_layers="conv2", style_layers=["conv1"], verbose=0)
    extractor = keras.Model(any_size_cnn.input, [any_size_cnn.get_layer("conv1").output])
    style_features = np.asarray(extractor(style[None]))[0]
    start_features = np.asarray(extractor(content[None]))[0]

    def gram(f):
        return f.reshape(-1, f.shape[-1]).T @ f.reshape(-1, f.shape[-1]) / (
            f.shape[0] * f.shape[1])

    expected = ((gram(start_features) - gram(style_features)) ** 2).mean() / (
        gram(style_features) ** 2).mean()
    assert result.style_loss[0] == pytest.approx(expected, rel=1e-4)
    assert result.content_loss[0] == pytest.approx(0.0, abs=1e-9)  # starts at the content


def test_octaves_and_the_default_layers_of_another_model(any_size_cnn):
    content, style = _pictures(32)
    result = style_transfer(content, style, model=any_size_cnn, steps=2, octaves=2,
                            verbose=0)
    assert result.image.shape == (32, 32, 3) and result.style_loss.shape == (4,)
    assert result.content_layers == ["conv2"] and result.style_layers == [
        "conv1", "conv2", "conv3"]


@pytest.mark.parametrize("arguments, named", [
    ({"content": np.zeros((2, 16, 16, 3))}, "content"),
    ({"style": np.zeros((16, 16, 2))}, "style"),  # greyscale is repeated in RGB
    ({"style_layers": ["nope"]}, "style_layers"),
    ({"steps": 0}, "steps"),
    ({"learning_rate": -1.0}, "learning_rate"),
])
def test_style_transfer_names_a_bad_argument(any_size_cnn, arguments, named):
    content, style = _pictures(16)
    call = {"content": content, "style": style, "model": any_size_cnn, "steps": 1,
            "verbose": 0, **arguments}
    with pytest.raises(ValueError) as error:
        style_transfer(**call)
    assert named in str(error.value) or getattr(error.value, "argument", None) == named


@pytest.mark.slow
def test_default_vgg_over_the_default_steps():
    """Random-weight VGG-19 (nothing downloaded), 64x64, the defaults: style loss falls
    >= 10x while the content loss stays within 2x of its start (figures in the note)."""
    import keras

    keras.utils.set_random_seed(0)
    content, style = _pictures(64)
    result = style_transfer(content, style, verbose=0)
    print("content", result.content_loss[0], "->", result.content_loss[-1], "max",
          result.content_loss.max(), "style", result.style_loss[0], "->",
          result.style_loss[-1], "ratio", result.style_loss[0] / result.style_loss[-1])
    assert result.style_layers == ["block1_conv1", "block2_conv1", "block3_conv1",
                                   "block4_conv1", "block5_conv1"]
    assert result.style_loss[0] / result.style_loss[-1] >= 10
    assert result.content_loss.max() <= 2 * result.content_loss[0]


def test_vgg_style_model_names_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        vgg_style_model("pretrained")
    assert vk.interpret.style_transfer is style_transfer
