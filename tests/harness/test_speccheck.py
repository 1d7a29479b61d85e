"""`visionbench spec check` passes on the repository and names the file and item of each problem."""

from __future__ import annotations

from harness.conventions import SPECS_DIR
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
