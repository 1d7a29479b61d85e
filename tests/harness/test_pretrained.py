"""The committed pretrained ShapesNet: it loads, reaches its recorded source accuracy, and refuses bad files clearly.

Evaluation only (seconds): retraining the committed weights is ``python -m harness.pretrained.train`` (about a
minute); here a few steps of the same recipe show that training is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from harness.datasets import registry
from harness.pretrained import ShapesNet, ShapesNetRecipe, backbone_state_dict, load_manifest, load_shapes_net, weights
from harness.pretrained import train as training
from harness.pretrained.weights import PretrainedWeightsError


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A copy of the committed files in a folder of their own, loaded from there (the load cache emptied around it)."""
    for name in (weights.weights_path().name, weights.manifest_path().name):
        shutil.copy(weights.WEIGHTS_DIR / name, tmp_path / name)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    weights._verified.cache_clear()
    yield tmp_path
    weights._verified.cache_clear()


def _rewrite_manifest(folder, **changes):
    path = folder / weights.manifest_path().name
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, **changes}))


def test_committed_weights_reach_the_recorded_source_accuracy():
    manifest = load_manifest()
    test = training.source_split("test")
    accuracy = training.accuracy(load_shapes_net(), test)
    one_image = 1 / len(test["labels"])  # another CPU may round one borderline image differently
    assert accuracy >= manifest.source_test_accuracy - one_image, f"source test accuracy {accuracy:.4f}, recorded {manifest.source_test_accuracy:.4f}"
    assert manifest.source_test_accuracy >= 0.95, "the pretrained network should solve its source task"


def test_manifest_matches_the_source_dataset_and_recipe():
    manifest = load_manifest()
    assert manifest.source_dataset == "shapes32_source"
    assert manifest.source_fingerprint == registry()["shapes32_source"].fingerprint
    assert manifest.recipe == weights.recipe_record(ShapesNetRecipe())
    assert weights.weights_path().stat().st_size < 1_000_000, "the committed weights should stay small"


def test_backbone_state_dict_loads_into_shapes_net_and_is_a_fresh_copy():
    state = backbone_state_dict()
    network = ShapesNet()
    network.load_state_dict(state)  # strict: same keys and shapes
    state["head.weight"].zero_()
    assert backbone_state_dict()["head.weight"].abs().sum() > 0, "a caller's changes must not reach the next caller"


def test_corrupted_weights_raise_a_clear_error(weights_dir):
    path = weights_dir / weights.weights_path().name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedWeightsError, match=r"corrupted or was replaced: its sha256 is .* retrain with"):
        load_shapes_net()


def test_missing_weights_raise_a_clear_error(weights_dir):
    (weights_dir / weights.weights_path().name).unlink()
    with pytest.raises(PretrainedWeightsError, match="cannot be read"):
        backbone_state_dict()


def test_stale_recipe_or_dataset_raise_a_clear_error(weights_dir):
    recipe = weights.recipe_record(ShapesNetRecipe())
    _rewrite_manifest(weights_dir, recipe={**recipe, "epochs": recipe["epochs"] + 1})
    with pytest.raises(PretrainedWeightsError, match="is stale: the recipe changed"):
        load_shapes_net()
    _rewrite_manifest(weights_dir, recipe=recipe, source_fingerprint="0" * 64)
    weights._verified.cache_clear()
    with pytest.raises(PretrainedWeightsError, match="is stale: shapes32_source's fingerprint is now"):
        load_shapes_net()


def test_weights_that_do_not_fit_the_architecture_raise_a_clear_error(weights_dir):
    path = weights_dir / weights.weights_path().name
    state = torch.load(path, weights_only=True)
    del state["head.bias"]
    torch.save(state, path)
    _rewrite_manifest(weights_dir, weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(PretrainedWeightsError, match="does not fit ShapesNet"):
        load_shapes_net()


def test_training_is_deterministic_and_writes_a_loadable_manifest(tmp_path):
    recipe = ShapesNetRecipe()
    first, second = training.train_shapes_net(recipe, max_steps=2), training.train_shapes_net(recipe, max_steps=2)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), f"two runs of the recipe differ in {name}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        untrained = ShapesNet(num_classes=recipe.num_classes, widths=recipe.widths)
    assert not torch.equal(untrained.head.weight, first.head.weight), "two steps should change the weights"
    manifest = training.write_weights(first, recipe, train_s=1.0, out_dir=tmp_path)
    assert manifest.weights_sha256 == hashlib.sha256((tmp_path / weights.weights_path().name).read_bytes()).hexdigest()
    assert weights.Manifest.model_validate_json((tmp_path / weights.manifest_path().name).read_text()) == manifest
