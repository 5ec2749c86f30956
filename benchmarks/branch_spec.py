"""The 2D branch sizes the benchmarks take: 'FEATURES[xSTACKS][sSTEM]', e.g. '64x1s64'.

One parser for train_step.py and branch_width.py (a module without absl flags, so both
scripts can import it; run as scripts, benchmarks/ is on their path).
"""

import re
from typing import Tuple

PAPER_STACKS, PAPER_STEM = 2, 128


def parse_branch(text: str) -> Tuple[int, int, int]:
  """'256x2' -> (256, 2, 128); '64x1s64' -> (64, 1, 64); '64' -> (64, 2, 128).

  Raises:
    ValueError: not FEATURES[xSTACKS][sSTEM] with positive integers.
  """
  match = re.fullmatch(r"(\d+)(?:x(\d+))?(?:s(\d+))?", text)
  sizes = None if not match else (int(match[1]), int(match[2] or PAPER_STACKS),
                                  int(match[3] or PAPER_STEM))
  if sizes is None or min(sizes) < 1:
    raise ValueError(f"{text!r} is not FEATURES[xSTACKS][sSTEM] (positive integers, "
                     "e.g. 64x1s64)")
  return sizes
