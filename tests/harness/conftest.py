# Heavy libraries are imported before pytester snapshots sys.modules, so its restore never unloads them.
import numpy  # noqa: F401
import torch  # noqa: F401

pytest_plugins = ["pytester"]
