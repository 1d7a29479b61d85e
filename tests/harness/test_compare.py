"""assert_close passes within tolerance and otherwise says how far off, where, and in what shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.spec import Tolerance
from harness.spec.outcomes import CheckFailure
from harness.topic.compare import assert_close, distinct

TIGHT = Tolerance(rtol=1e-6, atol=1e-8)


def test_within_tolerance_passes():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    assert_close(x + 1e-9, x, TIGHT)
    assert_close(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), TIGHT)


def test_failure_reports_numbers_and_location():
    expected = torch.zeros(2, 3)
    actual = expected.clone()
    actual[1, 2] = 0.5
    with pytest.raises(CheckFailure) as failure:
        assert_close(actual, expected, TIGHT, what="conv output")
    message = str(failure.value)
    assert "conv output: 1 of 6 elements" in message and "at index (1, 2)" in message and "got 0.5, expected 0" in message
    assert failure.value.numbers["max_abs_error"] == pytest.approx(0.5) and failure.value.numbers["worst_index"] == [1, 2]


@pytest.mark.parametrize(
    ("actual", "expected", "message"),
    [
        (torch.zeros(2, 3), torch.zeros(3, 2), r"shape \(2, 3\) but the oracle's is \(3, 2\)"),
        (torch.zeros(2, dtype=torch.float64), torch.zeros(2), r"dtype float64 but the oracle's is float32"),
        (torch.tensor([np.nan, 0.0]), torch.zeros(2), r"1 NaN where the oracle has a number"),
        ("zeros", torch.zeros(2), r"expected a tensor or array like the oracle's, got str"),
    ],
    ids=["shape", "dtype", "nan", "type"],
)
def test_wrong_results_are_described(actual, expected, message):
    with pytest.raises(CheckFailure, match=message):
        assert_close(actual, expected, TIGHT)


def test_values_are_printed_with_the_digits_that_tell_them_apart():
    assert distinct(0.1234567891, 0.1234567) == ("0.1234568", "0.1234567")  # 7 digits tell them apart
    assert distinct(1.0, 1.0 + 2**-52) == ("1", "1.0000000000000002")
    assert distinct(2.5, 2.5) == ("2.5", "2.5")
    with pytest.raises(CheckFailure, match=r"got 1\.0000001, expected 1\)"):
        assert_close(torch.tensor([1.0000001], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), Tolerance(rtol=0, atol=1e-9))


def test_braces_in_what_are_printed_as_they_are():
    with pytest.raises(CheckFailure, match=r"conv2d\{'stride': 2\}: 1 of 1 elements"):
        assert_close(torch.tensor([1.0]), torch.tensor([2.0]), Tolerance(rtol=0, atol=0), what="conv2d{'stride': 2}")
