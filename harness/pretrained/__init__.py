"""Pretrained networks the harness owns, trained by the project's own script and committed; nothing downloads.

- :class:`ShapesNet`: a small CNN (four stages, a linear head) for 32x32 RGB images.
- :func:`load_shapes_net`: ShapesNet with the committed weights, pretrained on ``shapes32_source`` (5 shape
  classes), checked against their manifest (sha256, recipe, source dataset) on load.
- :func:`backbone_state_dict`: those weights as a state dict, the ``backbone`` input of topic 05's task.

Retrain (deterministic, about a minute on one core) with ``python -m harness.pretrained.train``, then commit
``shapes_net.pt`` and ``shapes_net.json``.
"""

from __future__ import annotations

from harness.pretrained.shapes_net import SOURCE_DATASET, ShapesNet, ShapesNetRecipe
from harness.pretrained.weights import PretrainedWeightsError, backbone_state_dict, load_manifest, load_shapes_net

__all__ = ["ShapesNet", "ShapesNetRecipe", "SOURCE_DATASET", "PretrainedWeightsError", "load_shapes_net", "backbone_state_dict", "load_manifest"]
