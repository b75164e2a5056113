"""Files from elsewhere run no code: recipes, .keras models, annotation paths, no pickles."""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import re
from argparse import Namespace
from pathlib import Path

import keras
import numpy as np
import pytest

import visionkit as vk
from visionkit import cli
from visionkit.config import RecipeError, load_recipe
from visionkit.errors import DataError
from visionkit.testing import noise, save_image, write_bytes

ROOT = Path(__file__).resolve().parents[2]


def _hostile_recipe(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    recipe = write_bytes(tmp_path / "recipe.yaml", (
        "name: hostile\ntask: classification\n"
        f"data: !!python/object/apply:os.system ['touch {marker}']\n"))
    return recipe, marker


def test_recipe_with_a_python_tag_is_refused_and_runs_nothing(tmp_path, capsys):
    recipe, marker = _hostile_recipe(tmp_path)
    with pytest.raises(RecipeError, match="not valid YAML.*python/object/apply:os.system"):
        load_recipe(recipe)
    assert cli.main(["train", str(recipe)]) == 2
    assert "python/object/apply:os.system" in capsys.readouterr().err
    assert not marker.exists()


def test_override_with_a_python_tag_stays_a_string(tmp_path):
    marker = tmp_path / "code-ran"
    recipe = load_recipe(ROOT / "pipelines" / "digits_cnn.yaml",
                         [f"train.run_dir=!!python/object/apply:os.system ['touch {marker}']"])
    assert recipe.train.run_dir.startswith("!!python/object/apply")  # inert text
    assert not marker.exists()


@pytest.fixture
def lambda_model(tmp_path) -> str:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0 + 1.0)(inputs))
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    return path


def test_keras_file_with_a_lambda_is_refused_with_the_way_to_opt_out(lambda_model, capsys):
    status = cli.main(["evaluate", lambda_model, "--recipe", "unused.yaml"])
    assert status == 2
    message = capsys.readouterr().err
    assert lambda_model in message and "safe mode" in message and "--unsafe" in message
    # Opting out loads it, and the lambda runs.
    model = cli._load_checkpoint(Namespace(checkpoint=lambda_model, unsafe=True))
    np.testing.assert_allclose(model(np.ones((1, 3), np.float32)), [[3.0, 3.0, 3.0]])


def _is_pickle(path: Path) -> bool:
    """A pickle: protocol 2+ header, and the whole file parses as pickle opcodes."""
    data = path.read_bytes()
    if path.suffix in (".pkl", ".pickle"):
        return True
    if len(data) < 3 or data[0] != 0x80 or data[1] not in range(2, pickle.HIGHEST_PROTOCOL + 1):
        return False
    try:
        opcodes = list(pickletools.genops(data))
    except Exception:  # noqa: BLE001  (anything that does not parse is not a pickle)
        return False
    return opcodes[-1][0].name == "STOP"


def test_is_pickle_recognizes_pickles(tmp_path):
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        (tmp_path / f"p{protocol}.bin").write_bytes(pickle.dumps({"a": [1, 2]}, protocol))
        assert _is_pickle(tmp_path / f"p{protocol}.bin")
    (tmp_path / "floats.bin").write_bytes(b"\x80\x03" + np.arange(64, dtype=np.float32).tobytes())
    assert not _is_pickle(tmp_path / "floats.bin")


def test_training_and_export_write_no_pickles(tmp_path, tiny_digits):
    # Every kind of file a run and an export write; the number of steps and the
    # export's verification (which writes nothing) do not change which.
    run = vk.train.fit("simple_cnn", tiny_digits, epochs=1, steps_per_epoch=2,
                       run_dir=tmp_path / "run", verbose=0, model_kwargs={"filters": (4,)},
                       seed=0)
    exported = vk.export.saved_model(run.model, tmp_path / "export", data=tiny_digits,
                                     verify=False)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "best.keras" for path in written)
    assert any(path.name == "saved_model.pb" for path in Path(exported).rglob("*"))
    assert [path for path in written if _is_pickle(path)] == []


UNSAFE_SOURCE = re.compile(
    r"\bpickle\.(dump|dumps|load|loads)\b|\bimport (pickle|dill|cloudpickle|shelve|marshal)\b"
    r"|allow_pickle\s*=\s*True|\byaml\.(load|unsafe_load|full_load)\(|\bsafe_mode\s*=\s*False"
    r"|enable_unsafe_deserialization|(?<![\w.])eval\(|(?<![\w.])exec\(")


# The one place visionkit compiles source: `compile_builder` writes a `def` header from
# its own builders' parameter names, as dataclasses writes `__init__`; it refuses any name
# that is not an identifier (test below), and defaults travel as objects, not text.
ALLOWED_EXEC = {"visionkit/models/variants.py": 1}


def test_visionkit_source_neither_pickles_nor_evaluates():
    offending, allowed = [], dict.fromkeys(ALLOWED_EXEC, 0)
    for path in sorted((ROOT / "visionkit").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if relative in ALLOWED_EXEC and re.search(r"(?<![\w.])exec\(compile\(", code):
                allowed[relative] += 1
            elif UNSAFE_SOURCE.search(code):
                offending.append(f"{relative}:{number}: {line.strip()}")
    assert offending == []
    assert allowed == ALLOWED_EXEC
    assert UNSAFE_SOURCE.search("data = pickle.load(handle)")  # the pattern does match


@pytest.mark.parametrize("name", ["x): import os  #", "for", "a b", ""])
def test_the_builder_compiler_takes_identifiers_only(name):
    import inspect

    from visionkit.models.variants import compile_builder

    with pytest.raises(ValueError, match="Python identifier"):
        compile_builder(name, [], dict, {})
    # Parameter names are identifiers already: inspect.Parameter refuses anything else.
    with pytest.raises(ValueError, match="not a valid parameter name"):
        inspect.Parameter("y=__import__('os')", inspect.Parameter.KEYWORD_ONLY)


@pytest.fixture
def outside_image(tmp_path) -> Path:
    """A real image next to (outside) the images root, so a path to it would load."""
    return save_image(tmp_path / "secret.png", noise(12, 16))


@pytest.mark.parametrize("file_name", ["../secret.png", "ABSOLUTE", "sub/../../secret.png",
                                       "link/secret.png"])
def test_coco_paths_leaving_the_images_root_are_refused(tmp_path, outside_image, file_name):
    images = tmp_path / "images"
    save_image(images / "a.png", noise(12, 16))
    os.symlink(tmp_path, images / "link")
    file_name = str(outside_image) if file_name == "ABSOLUTE" else file_name
    spec = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 7, "file_name": file_name}],
            "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    path = write_bytes(tmp_path / "instances.json", json.dumps(spec))
    with pytest.raises(DataError, match="points outside the images root") as error:
        vk.data.coco(path, images)
    assert f"{path} images[1] (id 7) file_name" in str(error.value)
    assert repr(file_name) in str(error.value)


@pytest.mark.parametrize("file_name", ["../secret.png", "ABSOLUTE"])
def test_voc_paths_leaving_the_images_root_are_refused(tmp_path, outside_image, file_name):
    save_image(tmp_path / "JPEGImages" / "a.png", noise(12, 16))
    file_name = str(outside_image) if file_name == "ABSOLUTE" else file_name
    xml = write_bytes(tmp_path / "Annotations" / "a.xml",
                f"<annotation><filename>{file_name}</filename></annotation>")
    with pytest.raises(DataError, match="points outside the images root") as error:
        vk.data.voc(tmp_path)
    assert f"{xml} <filename>" in str(error.value)
