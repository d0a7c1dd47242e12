"""How big a network is before it is built: parameters counted on PyTorch's meta device (shapes,
no storage), and the memory a training needs, checked against the machine and the data.

    params      built on the meta device: exact, whatever the task, cell or options
    training    params × 4 bytes × 4 (weights, gradients, Adam's two moments)
                + activations ≈ batch × longest sequence × H × layers × directions × 4 bytes × 12
                (the cells' gates, states and their gradients, with room to spare)
    the data    more than MAX_PARAMS_PER_TOKEN parameters per training token cannot be learned from it
                (judged for models of more than SMALL parameters)

A model past either bound is refused with the estimate in the message; `force` builds it anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from rnnkit.errors import UserError

MAX_PARAMS_PER_TOKEN = 1000  # the largest recipes have 70 parameters per token (PTB, 2×1500)
SMALL = 1_000_000  # a model this small is never judged against the data (tests, demos, toy files)
ACTIVATION_FACTOR = 12  # floats kept per hidden unit and step for backward (gates, states, grads)
MAX_META_PARAMS = 1 << 40  # past this, even counting is pointless


def count_parameters(build: Callable[[], torch.nn.Module]) -> int:
    """The parameters `build()` makes, built on the meta device: no memory is allocated."""
    with torch.device("meta"):
        net = build()
    return sum(p.numel() for p in net.parameters())


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a training on `device`: the GPU's free memory, or the host's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def training_bytes(params: int, batch_size: int, longest: int, hidden: int, layers: int, directions: int) -> int:
    activations = batch_size * longest * hidden * layers * directions * 4 * ACTIVATION_FACTOR
    return params * 4 * 4 + activations


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def check_training_size(
    params: int, tokens: int, batch_size: int, longest: int, model_config, device: torch.device, force: bool
) -> None:
    """Refuse (UserError) a network that the machine cannot hold while training, or that has far
    more parameters than the data has tokens; `force` lets the second through."""
    directions = 2 if model_config.bidirectional else 1
    need = training_bytes(
        params, batch_size, longest, model_config.hidden_size, model_config.num_layers * model_config.ensemble,
        directions,
    )  # fmt: skip
    have = available_memory(device)
    if have is not None and need > have and not force:
        raise UserError(
            f"the model has {params:,} parameters and training it needs about {_gb(need)}, more than the "
            f"{_gb(have)} free on {device}; choose a smaller --hidden, --embed, --layers or --batch-size "
            "(or add --force to try anyway)"
        )
    if params > max(SMALL, MAX_PARAMS_PER_TOKEN * tokens) and not force:
        raise UserError(
            f"the model has {params:,} parameters for {tokens:,} training tokens, over "
            f"{MAX_PARAMS_PER_TOKEN:,} per token: more than this data can train; choose a smaller --hidden, "
            "--layers or --ensemble, or add --force to build it anyway"
        )
