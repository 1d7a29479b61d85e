"""Stage 1, the contract (both processes): topic specs, interface signatures, check outcomes and their points.

``from harness.spec import load_specs, TopicSpec, Check, ...`` reaches the spec models; the outcome vocabulary is
:mod:`harness.spec.outcomes`, the signature comparison :mod:`harness.spec.signatures`, and the rule that turns item
verdicts into points :mod:`harness.spec.scoring`.
"""

from harness.spec.models import *  # noqa: F403
from harness.spec.models import __all__  # noqa: F401
