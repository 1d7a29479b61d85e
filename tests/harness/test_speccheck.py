"""`visionbench spec check` passes on the repository and names the file and item of each problem."""

from __future__ import annotations

from harness.conventions import SPECS_DIR
from harness.spec import load_specs
from harness.tools import speccheck
from harness.tools.speccheck import check_all


def test_repository_is_consistent():
    specs, problems = check_all()
    assert specs and not problems, "\n".join(map(str, problems))


def test_problems_name_file_and_item(tmp_path):
    (tmp_path / "01_image_basics.yaml").write_text("id: image_basics\nnumber: [1\n")
    (tmp_path / "02_convolution.yaml").write_text("id: convolution\nnumber: 2\ntitle: t\nidea: i\ninterfaces: {}\nchecks: {}\n")
    _, problems = check_all(tmp_path)
    messages = [str(p) for p in problems]
    assert any(m.startswith(str(tmp_path / "01_image_basics.yaml")) and "invalid YAML at line 3" in m for m in messages), messages
    assert any("@check(" in m and "is not a check of the spec" in m for m in messages), messages


def test_task_inputs_must_name_harness_functions_that_exist(tmp_path):
    spec = (SPECS_DIR / "05_transfer.yaml").read_text().replace("harness.pretrained:backbone_state_dict", "harness.pretrained:no_such_weights")
    (tmp_path / "05_transfer.yaml").write_text(spec)
    _, problems = check_all(tmp_path)
    messages = [str(p) for p in problems]
    assert any("tasks.fewshot_transfer.train_inputs.backbone" in m and "does not resolve" in m for m in messages), messages


RETYPING_TEST = '''
import pytest
import torch
from harness.topic.strategies import seeds
from harness.testing import check

DTYPES = [torch.float32, torch.float64]


def _random_boxes(count, seed):
    return torch.rand(count, 4, generator=torch.Generator().manual_seed(seed))


@check("conv2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_against_torch(impl, dtype):
    pass
'''


def test_topic_tests_that_retype_authoring_helpers_are_reported(tmp_path):
    test_file = tmp_path / "test_convolution.py"
    test_file.write_text(RETYPING_TEST)
    messages = [str(p) for p in speccheck._check_authoring(test_file)]
    for expected in ("DTYPES: re-types", "_random_boxes: re-defines the authoring helper harness.testing.random_boxes",
                     "imports harness.topic.strategies", "builds a torch.Generator", "parametrizes dtype by hand"):  # fmt: skip
        assert any(expected in m for m in messages), (expected, messages)


def test_metric_checks_have_no_hand_written_test():
    generated = {cid for spec in load_specs().values() for cid, c in spec.checks.items() if c.kind.tier == "full"}
    written = {cid for topic in load_specs() for cid in speccheck.tests_by_check(topic)[0]}
    assert not generated & written
