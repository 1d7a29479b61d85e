# Heavy libraries are imported before pytester (enabled in pyproject.toml) snapshots sys.modules, so its restore never
# unloads them (numpy's C extension cannot be loaded twice in one process).
import numpy  # noqa: F401
import torch  # noqa: F401
