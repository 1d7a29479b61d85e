"""Learner bugs share a topic process only when no check of one can reach the code of another."""

from __future__ import annotations

from canaries import REPLACE, LearnerBug, plan_batches


def bug(name: str, overrides: str, loses: list[str]) -> LearnerBug:
    return LearnerBug(name, "value", overrides, dict.fromkeys(loses, "failed"))


OUTPUT_SIZE = bug("output_size", "def output_size(size, kernel, padding=0, stride=1, dilation=1):\n    return size\n", ["output_size_matches_torch"])
PAD = bug("pad", "def pad2d(x, padding, mode='zeros'):\n    return x\n", ["pad2d_matches_torch"])
MAX_POOL = bug("max_pool", "def max_pool2d(x, kernel_size, stride=None, padding=0):\n    return x\n", ["max_pool2d_matches_torch"])
COL2IM = bug("col2im", "_col2im = col2im\ndef col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):\n    return 0\n", ["col2im_matches_torch", "conv2d_backward_matches_autograd"])
BACKWARD = bug("backward", "def conv2d_backward(x, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):\n    return 0\n", ["conv2d_backward_matches_autograd"])
DYNAMIC = bug("dynamic", REPLACE + "_replace(['receptive_field'], lambda result, *args: result + 1)\n", ["receptive_field_matches_gradient_footprint"])


def test_bugs_whose_checks_cannot_reach_each_other_share_a_process():
    assert plan_batches("convolution", [PAD, MAX_POOL]) == [[PAD, MAX_POOL]]
    # max_pool2d sizes its output with output_size: a wrong output_size could be what fails max_pool2d's check
    assert plan_batches("convolution", [OUTPUT_SIZE, MAX_POOL]) == [[OUTPUT_SIZE], [MAX_POOL]]


def test_a_bug_in_code_another_bugs_checks_reach_gets_its_own_process():
    # conv2d_backward's check reaches col2im (the reference scatters its gradient through it), and both define names
    # the other's checks grade.
    assert plan_batches("convolution", [COL2IM, BACKWARD]) == [[COL2IM], [BACKWARD]]
    # the check every interface shares (invalid arguments) reaches everything: alone too
    validation = bug("validation", "def avg_pool2d(x, kernel_size, stride=None, padding=0):\n    return x\n", ["invalid_arguments_raise_clear_errors"])
    assert plan_batches("convolution", [MAX_POOL, validation]) == [[MAX_POOL], [validation]]


def test_a_bug_that_rebinds_interfaces_at_run_time_is_graded_alone():
    assert plan_batches("convolution", [DYNAMIC, PAD, MAX_POOL]) == [[DYNAMIC], [PAD, MAX_POOL]]
