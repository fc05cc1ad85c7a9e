"""Suite-wide settings: tiny models run fastest on one thread (and tests don't fight over 2 cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
