"""The training state: exactly what a checkpoint saves and restores.

Networks (G, D and, when ``config.ema``, an exponential moving average of G), their Adam
optimisers, the learning-rate schedulers, the grad scaler, the RNG states (the patch sampler's,
torch's and CUDA's), the step counter, the history and the validation metrics (with the best
value so far). :meth:`TrainState.checkpoint` / :meth:`TrainState.restore` are inverses, which is
what makes a resumed run give the same weights as an uninterrupted one.
"""

from __future__ import annotations

import torch

from ..checkpoint import Checkpoint, load_state
from ..config import ModelConfig, TrainConfig
from ..models import build_discriminator, build_generator


def make_adam(module: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with the paper's betas; fused (one kernel over all tensors) where the device has a
    fused kernel (CPU and CUDA with torch >= 2.4), else the multi-tensor (foreach) path."""
    kwargs: dict = {"lr": config.lr, "betas": (config.beta1, config.beta2)}
    try:
        return torch.optim.Adam(module.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(module.parameters(), foreach=device.type != "cpu" or None, **kwargs)


def lr_factor(config: TrainConfig):
    """The schedule as a LambdaLR multiplier: constant, then linear decay (``TrainConfig.lr_at``)."""
    return lambda step: config.lr_at(step) / config.lr


def _cpu(value, copy: bool = True):
    """A CPU tensor: a copy, or (``copy=False``) the tensor itself where it already is on the CPU."""
    value = value.detach()
    if value.device.type != "cpu":
        return value.cpu()
    return value.clone() if copy else value


def _plain(module, copy: bool = True) -> dict:
    return {k: _cpu(v, copy) for k, v in getattr(module, "module", module).state_dict().items()}


def _cpu_optimizer_state(opt, copy: bool = True) -> dict:
    state = opt.state_dict()
    return {"state": {i: {k: _cpu(v, copy) if torch.is_tensor(v) else v for k, v in st.items()}
                      for i, st in state["state"].items()},
            "param_groups": state["param_groups"]}


class TrainState:
    """Networks, optimisers, schedulers, scaler, RNG states and counters of one run."""

    def __init__(self, model: ModelConfig, config: TrainConfig, device: torch.device, *,
                 use_scaler: bool = False):
        self.model_config, self.config, self.device = model, config, device
        torch.manual_seed(config.seed)
        self.generator = build_generator(model).to(device)
        self.discriminator = build_discriminator(model).to(device)
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.ema = None
        if getattr(config, "ema", False):
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                                     use_buffers=True)
        self.opt_g = make_adam(self.generator, config, device)
        self.opt_d = make_adam(self.discriminator, config, device)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lr_factor(config))
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lr_factor(config))
        # fp16 needs loss scaling; the deferred (no host sync) guard also steps through a scaler
        # so that a non-finite step is skipped on the device (see step.py)
        fp16 = config.precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16 or use_scaler,
                                           init_scale=2.0**16 if fp16 else 1.0,
                                           growth_interval=2000 if fp16 else 2**30)
        # the same seed on every rank: PatchSampler draws world_size batches and keeps this rank's
        self.sampler_rng = torch.Generator().manual_seed(config.seed * 1000)
        self.step = 0
        self.history: list[dict] = []
        self.metrics: dict = {}

    @property
    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    def modules(self):
        return self.generator, self.discriminator

    # ------------------------------------------------------------------------ save / load
    def rng_state(self) -> dict:
        rng = {"sampler": self.sampler_rng.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def set_rng_state(self, rng: dict) -> None:
        if "sampler" in rng:
            self.sampler_rng.set_state(rng["sampler"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _set_schedule(self, step: int) -> None:
        """Put the LR schedulers where they stand after ``step`` steps (no sched.step() before opt.step())."""
        for sched in (self.sched_g, self.sched_d):
            sched.last_epoch = step
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * sched.lr_lambdas[0](step)

    def rewind(self, step: int, rng: dict) -> None:
        """Counters back to ``step`` (the deferred guard found a bad step after it; the weights
        were never changed): step counter, schedulers, random state."""
        self.step = step
        self._set_schedule(step)
        self.set_rng_state(rng)

    def checkpoint(self, data: dict, *, copy: bool = True, optimizer: bool = True) -> Checkpoint:
        """A CPU copy of everything (``data``: the dataset's normalisation and source). With an
        EMA, the averaged generator is the model's ``generator`` (what inference uses) and the
        raw weights travel as ``generator_raw`` for an exact resume.

        ``copy=False``: tensors already on the CPU are the live ones, not copies (for a save
        that happens before the next step, or a state that is no longer trained).
        ``optimizer=False``: without the optimizer states (a weights-only file)."""
        generator = _plain(self.generator, copy)
        extra = {}
        if self.ema is not None:
            extra = {"generator_raw": generator, "ema_updates": int(self.ema.n_averaged)}
            generator = _plain(self.ema.module, copy)
        return Checkpoint(model=self.model_config, step=self.step, training=self.config, data=data,
                          generator=generator, discriminator=_plain(self.discriminator, copy),
                          optimizer_g=_cpu_optimizer_state(self.opt_g, copy) if optimizer else None,
                          optimizer_d=_cpu_optimizer_state(self.opt_d, copy) if optimizer else None,
                          rng=self.rng_state(),
                          metrics=dict(self.metrics, **({"ema": extra["ema_updates"]} if extra else {})),
                          history=list(self.history), generator_raw=extra.get("generator_raw") or {})

    def load_weights(self, ckpt: Checkpoint, source) -> None:
        """Weights only (``init_from``): G (the raw weights when the file has an EMA) and D."""
        raw = getattr(ckpt, "generator_raw", None) or ckpt.generator
        load_state(self.generator, raw, "generator", source)
        if ckpt.discriminator:
            load_state(self.discriminator, ckpt.discriminator, "discriminator", source)
        if self.ema is not None:
            load_state(self.ema.module, ckpt.generator, "generator", source)
        self.history = list(ckpt.history)

    def restore(self, ckpt: Checkpoint, source) -> None:
        """Everything a checkpoint holds: weights, optimisers, schedulers, RNG, counters."""
        self.load_weights(ckpt, source)
        if ckpt.optimizer_g:
            self.opt_g.load_state_dict(ckpt.optimizer_g)
        if ckpt.optimizer_d:
            self.opt_d.load_state_dict(ckpt.optimizer_d)
        self.step = ckpt.step
        self._set_schedule(self.step)
        self.set_rng_state(ckpt.rng)
        self.metrics = {k: v for k, v in dict(ckpt.metrics).items() if k != "ema"}
        if self.ema is not None:
            self.ema.n_averaged.fill_(int(ckpt.metrics.get("ema", self.step if ckpt.step else 0)))

