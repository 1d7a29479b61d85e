"""Convolutions from scratch."""


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output length along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
