import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from harness.testing import check


@check("output_size_matches_torch")
@given(size=st.integers(1, 20), kernel=st.integers(1, 5), padding=st.integers(0, 3), stride=st.integers(1, 3), dilation=st.integers(1, 3))
def test_output_size_matches_torch(impl, size, kernel, padding, stride, dilation):
    effective = dilation * (kernel - 1) + 1
    if size + 2 * padding < effective:
        return
    x = torch.zeros(1, 1, size, size)
    w = torch.zeros(1, 1, kernel, kernel)
    expected = F.conv2d(x, w, padding=padding, stride=stride, dilation=dilation).shape[-1]
    assert impl.output_size(size, kernel, padding, stride, dilation) == expected
