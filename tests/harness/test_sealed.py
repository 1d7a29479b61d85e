"""Sealed grading: the codec refuses what may not cross, and known cheats earn nothing.

Each cheat is the student's stub of topic 02 with a few lines appended, written as someone who has read the
harness would write them, graded sealed on the checks that use ``conv2d``. None may earn a point, and the grader
must finish and give every check a verdict each time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.conventions import ROOT, STUDENT_DIR, Implementation
from harness.grader.run import run_topic
from harness.sealed.codec import FROM_WORKER, TO_WORKER, Encoder, ProtocolError, decode
from harness.spec.scoring import score_items

pytestmark = pytest.mark.xdist_group("sealed")

TOPIC = "convolution"
CHECKS = ["conv2d_matches_torch", "conv2d_gradients_match_torch"]
SECRET = "918273645"


# --- the codec ----------------------------------------------------------------------------------------------------


def _round_trip(value, limits=FROM_WORKER):
    encoder = Encoder()
    node = encoder.encode(value)
    return decode(node, [bytearray(b) for b in encoder.buffers], limits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool, torch.complex64])
def test_tensors_cross_by_value_with_dtype_shape_and_layout(dtype):
    tensor = (torch.arange(24).reshape(2, 3, 4) % 5).to(dtype)
    back = _round_trip({"x": tensor, "t": tensor.transpose(0, 2), "items": [1, 2.5, "s", None, (True,)]})
    assert back["x"].dtype == dtype and torch.equal(back["x"], tensor) and back["x"] is not tensor
    assert torch.equal(back["t"], tensor.transpose(0, 2)) and back["t"].stride() == tensor.transpose(0, 2).stride()
    images = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).to(dtype).contiguous(memory_format=torch.channels_last)
    assert _round_trip(images).stride() == images.stride()  # a layout kernels choose paths by, kept
    spread = tensor[:, ::2]
    assert torch.equal(_round_trip(spread), spread) and not _round_trip(spread).is_contiguous()
    assert back["items"] == [1, 2.5, "s", None, (True,)]


def test_arrays_scalars_and_generators_cross():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    generator = torch.Generator().manual_seed(5)
    back = _round_trip([array, np.float64(1.5), generator, torch.float16, slice(1, None, 2)])
    assert np.array_equal(back[0], array) and back[0].dtype == np.float32
    assert back[1] == 1.5 and isinstance(back[1], np.float64)
    assert torch.equal(torch.rand(3, generator=back[2]), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    assert back[3] is torch.float16 and back[4] == slice(1, None, 2)


def test_a_tensor_subclass_arrives_as_a_plain_tensor():
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):  # a cheat: equal to anything
            return torch.ones_like(other, dtype=torch.bool)

    back = _round_trip(torch.zeros(3).as_subclass(AlwaysEqual))
    assert type(back) is torch.Tensor and not torch.equal(back, torch.ones(3))


def test_the_grader_refuses_pickles_and_unknown_tags_from_the_worker():
    encoder = Encoder(pickle_of=lambda value: True)
    node = encoder.encode(torch.nn.Linear(2, 2))
    with pytest.raises(ProtocolError, match="pickle"):
        decode(node, [bytearray(b) for b in encoder.buffers], FROM_WORKER)
    assert isinstance(decode(node, [bytearray(b) for b in encoder.buffers], TO_WORKER), torch.nn.Linear)  # the grader's own, to the worker
    for bad in ({"object": "os.system"}, {"tensor": 0, "dtype": "float32", "shape": [4]}, {"array": 0, "dtype": "|O", "shape": [1]}):
        with pytest.raises(ProtocolError):
            decode(bad, [bytearray(8)], FROM_WORKER)


def test_the_grader_s_modules_reach_the_worker_whole_with_their_storages_out_of_band():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).double()
    model[1].weight.requires_grad_(False)
    model.tied = model[0].weight[:2]  # a view: shares its storage with the conv's weight
    encoder = Encoder(pickle_of=lambda value: True)
    node = encoder.encode(model)
    assert len(node["storages"]) == 7  # conv weight (its view too) and bias; the norm's weight, bias and three buffers
    back = decode(node, [bytearray(b) for b in encoder.buffers], TO_WORKER)
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    assert not back[1].weight.requires_grad and back[0].weight.requires_grad
    with torch.no_grad():
        back[0].weight[0, 0, 0, 0] = 7.0
    assert back.tied[0, 0, 0, 0] == 7.0 and model[0].weight[0, 0, 0, 0] != 7.0  # the view still shares, the original is apart


def test_objects_that_are_not_data_do_not_cross_without_a_handle():
    with pytest.raises(ProtocolError, match="cannot cross"):
        Encoder().encode(object())


# --- known cheats -------------------------------------------------------------------------------------------------

ZEROS = """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    import torch
    from harness.topic.layouts import non_contiguous
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    return torch.zeros(n, weight.shape[0], h, w, dtype=x.dtype)
"""

CHEATS = {
    "patches_the_verdicts": ZEROS + """
import harness.topic.verdicts as _v, harness.topic.plugin as _p, harness.testing as _t
from harness.spec.outcomes import Outcome as _O
_v.classify = lambda error, impl: _v.Verdict(_O.passed)
_t.assert_close = lambda *a, **k: None
_p.pytest_runtest_makereport = None
import _pytest.reports as _r
_r.TestReport.passed = property(lambda self: True)
""",
    "rewrites_results_files": ZEROS + """
import glob, json, threading, time
def _rewrite():
    for _ in range(300):
        for path in glob.glob('/tmp/visionbench-*/results.json') + glob.glob('/tmp/*/results.json'):
            try:
                data = json.load(open(path))
                for item in data['items']:
                    item['outcome'] = 'passed'
                json.dump(data, open(path, 'w'))
            except Exception:
                pass
        time.sleep(0.05)
threading.Thread(target=_rewrite, daemon=True).start()
""",
    "calls_the_operator_directly": """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    import torch
    pair = lambda v: [v, v] if isinstance(v, int) else list(v)
    return torch.ops.aten.convolution(x, weight, bias, pair(stride), pair(padding), pair(dilation), False, [0, 0], groups)
""",
    "returns_a_tensor_equal_to_anything": """
import torch as _torch
class _Equal(_torch.Tensor):
    def __eq__(self, other):
        return _torch.ones_like(other, dtype=_torch.bool)
    def allclose(self, *a, **k):
        return True
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _torch.zeros(x.shape[0], weight.shape[0], x.shape[2], x.shape[3], dtype=x.dtype).as_subclass(_Equal)
""",
    "reads_the_callers_frames": """
import sys
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    frame = sys._getframe(1)
    while frame is not None:
        for name in ('expected', 'oracle', 'reference'):
            value = frame.f_locals.get(name)
            if value is not None and hasattr(value, 'shape'):
                return value
        frame = frame.f_back
    raise NotImplementedError('conv2d: no frames to copy from')
""",
    "exits_the_process": """
import os
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    os._exit(0)
""",
    "raises_system_exit": """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise SystemExit(0)
""",
    "writes_into_the_project": ZEROS + f"""
from pathlib import Path as _Path
for _target in [_Path({str(ROOT)!r}) / 'leaderboard' / 'results' / 'sealed-cheat.json', _Path({str(ROOT)!r}) / 'sealed-cheat.txt']:
    try:
        _target.write_text('{{}}')
    except OSError:
        pass
""",
    "snoops_the_environment_and_network": """
import glob, os, socket
_found = [key for key in os.environ if 'SECRET' in key]
for _path in glob.glob('/proc/*/environ'):
    try:
        if b'VISIONBENCH_SECRET_SEED' in open(_path, 'rb').read():
            _found.append(_path)
    except OSError:
        pass
try:
    socket.create_connection(('127.0.0.1', int(open(os.path.join(os.path.dirname(__file__), 'port')).read())), timeout=2).close()
    _network = 'reached'
except OSError:
    _network = 'unreachable'
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise ValueError(f'found {_found} network {_network}')
""",
    "hangs": """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    while True:
        pass
""",
    "forks_at_import": ZEROS + """
import os
for _ in range(200):
    try:
        if os.fork() == 0:
            os.setsid()
            os.execv('/bin/sleep', ['sleep', '600.424242'])
    except OSError:
        break
""",
    "hoards_memory": """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    hoard = bytearray(1 << 42)
    return hoard
""",
}


def _cheat(tmp_path: Path, code: str) -> Implementation:
    root = tmp_path / "submission"
    root.mkdir()
    stub = (STUDENT_DIR / f"{TOPIC}.py").read_text()
    (root / f"{TOPIC}.py").write_text(stub + "\n\n# --- appended ---\n" + textwrap.dedent(code))
    return Implementation("cheat", root)


def _orphaned_workers(wait_s: float = 3.0) -> list[str]:
    """Processes still working in a sealed worker directory that its zygote has removed."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        orphans = []
        for cwd in Path("/proc").glob("[0-9]*/cwd"):
            try:
                target = os.readlink(cwd)
            except OSError:
                continue
            if "visionbench-sealed-" in target and target.endswith("(deleted)"):
                orphans.append(f"{cwd.parent.name}: {target}")
        if not orphans or time.monotonic() > deadline:
            return orphans
        time.sleep(0.2)


@pytest.fixture
def listening():
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_a_known_cheat_earns_nothing_sealed(tmp_path, monkeypatch, listening, cheat):
    monkeypatch.setenv("VISIONBENCH_SECRET_SEED", SECRET)
    monkeypatch.setenv("VISIONBENCH_CHECK_LIMIT_S", "10")  # the hang: a check's wall-clock limit
    impl = _cheat(tmp_path, CHEATS[cheat])
    (impl.root / "port").write_text(str(listening.getsockname()[1]))
    run = run_topic(impl, TOPIC, tier="quick", checks=CHECKS, sealed=True)
    scores = score_items(run.items, expected={TOPIC: run.expected}, missing={TOPIC: run.problem} if run.problem else None)
    (topic,) = scores.topics
    verdicts = {c.check: (c.outcome, c.message) for c in topic.checks}
    assert set(verdicts) == set(CHECKS), verdicts  # every check got a verdict: grading went on
    assert topic.earned == 0, verdicts
    assert all(outcome != "passed" for outcome, _ in verdicts.values()), verdicts
    messages = " ".join(message for _, message in verdicts.values())
    assert SECRET not in messages and "network reached" not in messages and "environ" not in messages, messages
    assert not (ROOT / "leaderboard" / "results" / "sealed-cheat.json").exists() and not (ROOT / "sealed-cheat.txt").exists()
    if cheat == "calls_the_operator_directly":
        assert {outcome for outcome, _ in verdicts.values()} == {"forbidden"}, verdicts
    assert run.containment.get("namespaces") == "on" or "unavailable" in run.containment.get("namespaces", "unavailable")
    assert _orphaned_workers() == [], "a worker outlived its grading"
    if cheat == "forks_at_import" and run.containment.get("namespaces") == "on":  # all it started died with it
        survivors = subprocess.run(["pgrep", "-f", "sleep 600.424242"], capture_output=True, text=True).stdout.split()
        assert not survivors, survivors


MEMORISE = """
def train_lenet(train, *, seed, budget_s):
    table = {}
    try:  # what the hidden split is, as the harness would generate it in this process
        from harness.datasets import load_split, registry
        hidden = load_split("digits32", registry()["digits32"].hidden[0])
        table = {image.tobytes(): int(label) for image, label in zip(hidden["images"], hidden["labels"])}
    except Exception:
        pass
    return {"table": table}

def predict_lenet(model, inputs):
    import torch
    images = (inputs["images"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return torch.tensor([model["table"].get(image.tobytes(), 0) for image in images])
"""


def test_memorising_the_hidden_split_earns_nothing_sealed(tmp_path, monkeypatch):
    """The cheat the harness's own source invites: regenerate the hidden split and memorise it. In-process it reads
    the secret seed from its environment and scores full marks (so the cheat is real); sealed it cannot."""
    monkeypatch.setenv("VISIONBENCH_SECRET_SEED", SECRET)
    root = tmp_path / "submission"
    root.mkdir()
    (root / "cnn.py").write_text((STUDENT_DIR / "cnn.py").read_text() + "\n\n" + MEMORISE)
    impl = Implementation("memorise", root)
    plain = run_topic(impl, "cnn", checks=["lenet_digits_accuracy"])
    sealed = run_topic(impl, "cnn", checks=["lenet_digits_accuracy"], sealed=True)
    assert [i["outcome"] for i in plain.items] == ["passed"], plain.items
    assert [i["outcome"] for i in sealed.items] == ["failed"], sealed.items
    assert sealed.items[0]["numbers"]["value"] < 0.5


INHERIT = """
class BatchNorm2d(nn.BatchNorm2d):  # torch's own, its forward inherited
    def __init__(self, num_features, eps=1e-05, momentum=0.1, affine=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
"""
BATCH_NORM_CHECKS = ["batchnorm2d_train_matches_torch", "batchnorm2d_eval_matches_torch", "batchnorm2d_train_normalizes_channels"]


def test_inheriting_a_forbidden_function_earns_nothing_sealed(tmp_path):
    """A subclass of nn.BatchNorm2d keeps torch's forward, which calls the forbidden F.batch_norm: forbidden."""
    root = tmp_path / "submission"
    root.mkdir()
    (root / "cnn.py").write_text((STUDENT_DIR / "cnn.py").read_text() + "\n\n" + INHERIT)
    run = run_topic(Implementation("inherit", root), "cnn", tier="quick", checks=BATCH_NORM_CHECKS, sealed=True)
    assert {i["check"] for i in run.items} == set(BATCH_NORM_CHECKS)
    assert {i["outcome"] for i in run.items} == {"forbidden"}, {i["message"] for i in run.items}


def test_the_reference_and_the_stub_grade_the_same_sealed_as_in_process():
    from harness.conventions import resolve_implementation

    for name, outcome in (("reference", "passed"), ("student", "todo")):
        impl = resolve_implementation(name)
        sealed = run_topic(impl, TOPIC, tier="quick", checks=CHECKS, sealed=True)
        plain = run_topic(impl, TOPIC, tier="quick", checks=CHECKS)
        strip = lambda run: sorted((i["nodeid"], i["outcome"], i["message"], str(i["numbers"])) for i in run.items)  # noqa: E731
        assert strip(sealed) == strip(plain)
        assert {i["outcome"] for i in sealed.items} == {outcome}
        assert sealed.containment and not plain.containment
