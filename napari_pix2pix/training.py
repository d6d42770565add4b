"""Training: a :class:`Trainer` that can be stepped by hand or iterated as a stream of events.

Every face consumes the same stream (:meth:`Trainer.events`)::

    trainer = Trainer(model_config, train_config, dataset, out="model.safetensors")
    for event in trainer.events():
        if isinstance(event, StepEvent): ...      # every step: losses (floats), lr, seconds
        elif isinstance(event, PreviewEvent): ... # every preview_every steps: input/fake/target + D maps
        elif isinstance(event, ValidationEvent): ...
        elif isinstance(event, SavedEvent): ...
        elif isinstance(event, FinishedEvent): ...

One iteration follows the paper: fake = G(A); D on cat(A, fake.detach()) and cat(A, B) with the
D loss halved; then G against D plus lambda * L1(fake, B). Adam (lr 2e-4, betas 0.5/0.999), a
constant learning rate then a linear decay. With the same seed on a deterministic CPU,
N steps + save + resume + M steps gives the same weights as N + M steps: the sampler's
generator, torch's global generator, Adam's moments and batch-norm statistics are all saved.

Under ``torchrun`` (WORLD_SIZE > 1) the generator and discriminator are wrapped in
DistributedDataParallel (gloo on CPU, NCCL on CUDA), each rank samples its own patches and
rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint, load_state, save_checkpoint
from .config import ModelConfig, TrainConfig
from .devices import resolve_device
from .errors import ConfigError, DatasetError, TrainingError
from .losses import discriminator_loss, generator_loss
from .models import build_discriminator, build_generator, geometry


# ----------------------------------------------------------------------------------- events
@dataclass
class StepEvent:
    """One finished iteration. ``losses``: G_GAN, G_L1, D_real, D_fake (floats)."""

    step: int
    total: int
    losses: dict
    lr: float
    seconds: float


@dataclass
class PreviewEvent:
    """A fixed patch pushed through G (eval mode), in model space [-1, 1], ``[C, H, W]`` each,
    with the discriminator's logit maps ``[h, w]`` for the real and the fake pair, and the quality
    of the fake against the target: ``ssim`` (SSIM map) and ``error`` (|fake - target| on the
    [0, 1] scale), ``[H, W]`` averaged over channels."""

    step: int
    source: np.ndarray
    fake: np.ndarray
    target: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    ssim: np.ndarray | None = None
    error: np.ndarray | None = None


@dataclass
class ValidationEvent:
    """Metrics on the held-out split (L1, PSNR, SSIM, ...)."""

    step: int
    metrics: dict


@dataclass
class SavedEvent:
    step: int
    path: str
    best: bool = False


@dataclass
class FinishedEvent:
    step: int
    path: str | None
    stopped: bool
    seconds: float
    history: list = field(default_factory=list)


# ----------------------------------------------------------------------------- distributed
def _dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Trainer:
    """Pix2Pix training on a :class:`~napari_pix2pix.data.PairedDataset`.

    ``out``: the model file written at the end (and on stop, and on a non-finite loss).
    ``resume``: a model file to continue from (weights, optimizers, RNG states and step).
    ``val_dataset``: the held-out split used for previews and metrics.
    """

    def __init__(self, model: ModelConfig, config: TrainConfig, dataset, *, val_dataset=None,
                 out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
                 init_from=None):
        self.config = config
        self.dataset = dataset
        self.val_dataset = val_dataset
        self.out = Path(out) if out else None
        self.rank, self.world_size = _dist_env()
        self._stop = False
        self.history: list[dict] = []
        self.metrics: dict = {}
        self.step = 0
        from .metrics import BestTracker

        self.best = BestTracker(config.best_metric)
        self._fresh_csv = resume is None

        if resume is not None:
            ckpt = resume if isinstance(resume, Checkpoint) else load_checkpoint(resume)
            model = ckpt.model
        elif init_from is not None:
            ckpt = init_from if isinstance(init_from, Checkpoint) else load_checkpoint(init_from)
            model = ckpt.model
        else:
            ckpt = None
        self.model_config = model
        self._check_data(model, dataset)
        depth_multiple = model.size_multiple
        if config.crop % depth_multiple:
            raise ConfigError(f"crop {config.crop} is not a multiple of {depth_multiple}, which "
                              f"{model.generator} needs.",
                              f"use a crop that is a multiple of {depth_multiple}, or a smaller generator "
                              "(unet_128, unet_64, resnet_*).")

        self.device = resolve_device(config.device)
        if self.world_size > 1:
            self._init_distributed()
        torch.manual_seed(config.seed)
        self.generator = build_generator(model).to(self.device)
        self.discriminator = build_discriminator(model).to(self.device)
        if config.sync_batchnorm and self.world_size > 1:
            if self.device.type == "cuda":
                self.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)
                self.discriminator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.discriminator)
            else:  # torch's SyncBatchNorm runs on CUDA only; per-rank BN, buffers averaged (_sync_buffers)
                import warnings

                warnings.warn("sync_batchnorm needs CUDA; on the CPU each rank normalises its own batch "
                              "and the running statistics are averaged across ranks.", stacklevel=2)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest kernels
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.geometry = geometry(self.discriminator)
        if 0 in self.geometry.map_size(config.crop):
            raise ConfigError(f"crop {config.crop} is too small for this discriminator (receptive field "
                              f"{self.geometry.rf}): its map would be empty.",
                              "use a larger crop (e.g. 128 for discriminator_layers 5) or fewer discriminator layers.")
        self.opt_g = self._adam(self.generator)
        self.opt_d = self._adam(self.discriminator)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16"
                                           and self.device.type == "cuda")
        # the same seed on every rank: PatchSampler draws world_size batches and keeps this rank's,
        # so ranks never share a patch and one saved state resumes all of them
        self.sampler_rng = torch.Generator().manual_seed(config.seed * 1000)

        if ckpt is not None:
            source = resume if isinstance(resume, (str, os.PathLike)) else "model"
            load_state(self.generator, ckpt.generator, "generator", source)
            if ckpt.discriminator:
                load_state(self.discriminator, ckpt.discriminator, "discriminator", source)
            self.history = list(ckpt.history)
            if resume is not None:
                self._restore(ckpt)

        self.g_train, self.d_train = self.generator, self.discriminator
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DDP(self.generator, device_ids=ids, broadcast_buffers=False)
            self.d_train = DDP(self.discriminator, device_ids=ids, broadcast_buffers=False)
        if config.compile:
            self.g_train = torch.compile(self.g_train)
            self.d_train = torch.compile(self.d_train)

        from .data.augment import PairAugment
        from .data.sampling import PatchSampler, validation_patches

        self.sampler = PatchSampler(dataset, config.crop, config.batch_size,
                                    foreground_bias=getattr(dataset, "foreground_bias", 0.0),
                                    rank=self.rank, world_size=self.world_size)
        self.augment = PairAugment(config.augment, a_is_labels=getattr(dataset, "a_is_labels", False),
                                   b_is_labels=getattr(dataset, "b_is_labels", False)).to(self.device)
        preview_source = val_dataset if val_dataset is not None and len(val_dataset) else dataset
        self.preview_a, self.preview_b = validation_patches(preview_source, config.crop, max_patches=1)
        self.val_a = self.val_b = None
        if val_dataset is not None and len(val_dataset):
            self.val_a, self.val_b = validation_patches(val_dataset, config.crop, max_patches=8)

    # ------------------------------------------------------------------------- setup helpers
    @staticmethod
    def _check_data(model: ModelConfig, dataset) -> None:
        if dataset is None or len(dataset) == 0:
            raise DatasetError("the training dataset is empty.", "pair some images first (see `pair`).")
        if dataset.in_channels != model.in_channels or dataset.out_channels != model.out_channels:
            raise DatasetError(
                f"the data has {dataset.in_channels} -> {dataset.out_channels} channels but the model "
                f"expects {model.in_channels} -> {model.out_channels}.",
                "set the model's in/out channels to match the data, or choose other layers/channels.")

    def _adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        kwargs: dict = {"lr": self.config.lr, "betas": (self.config.beta1, self.config.beta2)}
        # fused Adam (one kernel over all tensors; ~5x faster than foreach on CPU with torch >= 2.4),
        # else the multi-tensor (foreach) path on builds/devices without a fused kernel
        try:
            return torch.optim.Adam(module.parameters(), fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(module.parameters(), foreach=True, **kwargs)

    def _init_distributed(self) -> None:
        import torch.distributed as dist

        self._owns_process_group = not dist.is_initialized()
        if self._owns_process_group:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        if self.device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            self.device = torch.device("cuda", local)
            torch.cuda.set_device(self.device)

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.optimizer_g:
            self.opt_g.load_state_dict(ckpt.optimizer_g)
        if ckpt.optimizer_d:
            self.opt_d.load_state_dict(ckpt.optimizer_d)
        self.step = ckpt.step
        if "sampler" in ckpt.rng:
            self.sampler_rng.set_state(ckpt.rng["sampler"])
        if "torch" in ckpt.rng:
            torch.set_rng_state(ckpt.rng["torch"])
        if self.device.type == "cuda" and "cuda" in ckpt.rng:
            torch.cuda.set_rng_state(ckpt.rng["cuda"], self.device)
        self.metrics = dict(ckpt.metrics)
        best = self.metrics.get("best") or {}
        if best.get("metric") == self.best.metric:
            self.best.best, self.best.step = best.get("value"), best.get("step")

    # ------------------------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the stream to end after the current step (thread-safe: a flag)."""
        self._stop = True

    @property
    def total_steps(self) -> int:
        return self.config.steps

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---------------------------------------------------------------------------- one step
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.sampler.sample(self.sampler_rng)
        pin = self.device.type == "cuda"
        if pin:
            a, b = a.pin_memory(), b.pin_memory()
        a = a.to(self.device, non_blocking=pin)
        b = b.to(self.device, non_blocking=pin)
        a, b = self.augment(a, b)
        if self.config.channels_last:
            a = a.contiguous(memory_format=torch.channels_last)
            b = b.contiguous(memory_format=torch.channels_last)
        return a, b

    @property
    def syncs_every_step(self) -> bool:
        """Whether every step reads its losses back to the host (CPU/MPS, or ``nan_policy='skip'``).
        On CUDA :meth:`events` reads them only at log intervals, so the GPU never waits for Python."""
        return self.device.type != "cuda" or self.config.nan_policy == "skip"

    def train_step(self, *, readout: bool = True) -> dict:
        """Run one iteration and return its losses as floats (``G_GAN``, ``G_L1``, ``D_real``,
        ``D_fake``). A non-finite loss raises :class:`TrainingError` before any weight changes
        (``nan_policy='stop'``) or skips the batch (``'skip'``, reported as ``skipped: 1``).

        ``readout=False`` (what :meth:`events` passes between log intervals on CUDA with
        ``nan_policy='stop'``) avoids every host synchronisation: the losses of the last readout
        are returned, non-finite losses are collected in a device flag that makes the fused
        optimizers skip the update, and the next readout step raises :class:`TrainingError`."""
        sync = readout or self.syncs_every_step
        cfg = self.config
        lr = cfg.lr_at(self.step)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        a, b = self._batch()
        if sync:  # batch-norm statistics move in the forward pass: keep a copy to undo a non-finite batch
            self._saved_buffers = [(buf, buf.clone()) for net in (self.generator, self.discriminator)
                                   for buf in net.buffers()]
        self.generator.train()
        self.discriminator.train()
        with _autocast(self.device, cfg.precision):
            fake = self.g_train(a)
            fake_logits = self.d_train(torch.cat([a, fake.detach()], 1))
            real_logits = self.d_train(torch.cat([a, b], 1))
        loss_d, d_real, d_fake = discriminator_loss(real_logits, fake_logits, cfg.gan_mode)
        bad = None if sync else ~torch.isfinite(loss_d.detach())
        if sync and not self._finite(loss_d, "discriminator"):
            return {"skipped": 1.0}
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self._optimizer_step(self.opt_d, bad)

        self.discriminator.requires_grad_(False)
        try:
            with _autocast(self.device, cfg.precision):
                fake_logits = self.discriminator(torch.cat([a, fake], 1))
            loss_g, g_gan, g_l1 = generator_loss(fake_logits, fake, b, cfg.lambda_l1, cfg.gan_mode,
                                                 cfg.lambda_gan)
            if sync and not self._finite(loss_g, "generator"):
                return {"skipped": 1.0}
            if not sync:
                bad = bad | ~torch.isfinite(loss_g.detach())
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g).backward()
            self._optimizer_step(self.opt_g, bad)
            self.scaler.update()
        finally:
            self.discriminator.requires_grad_(True)
        self.step += 1
        if not sync:
            self._nonfinite = bad if getattr(self, "_nonfinite", None) is None else self._nonfinite | bad
            return dict(getattr(self, "_last_losses", None)
                        or {k: float("nan") for k in ("G_GAN", "G_L1", "D_real", "D_fake")})
        values = torch.stack([g_gan.detach(), g_l1.detach(), d_real.detach(), d_fake.detach()]).float().tolist()
        self._last_losses = dict(zip(("G_GAN", "G_L1", "D_real", "D_fake"), values))
        self._raise_pending_nonfinite()
        return dict(self._last_losses)

    def _optimizer_step(self, opt: torch.optim.Optimizer, bad: torch.Tensor | None) -> None:
        """Optimizer step; with a device flag ``bad`` a fused optimizer skips it on the device
        (no host sync). The fp16 grad scaler skips non-finite steps itself."""
        if bad is None or self.scaler.is_enabled() or not opt.param_groups[0].get("fused"):
            self.scaler.step(opt)  # fp16: the scaler skips non-finite steps itself
            return
        opt.found_inf = bad.float().reshape(())
        try:
            opt.step()
        finally:
            del opt.found_inf

    def _all_ok(self, ok: torch.Tensor) -> bool:
        """``bool(ok)``, agreed by all ranks under DDP (any rank's failure stops or skips them all)."""
        if self.world_size > 1:
            import torch.distributed as dist

            flag = ok.detach().reshape(()).to(torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            ok = flag
        return bool(ok)

    def _raise_pending_nonfinite(self) -> None:
        pending, self._nonfinite = getattr(self, "_nonfinite", None), None
        if pending is not None and not self._all_ok(~pending):
            raise TrainingError(
                f"a loss became NaN or infinite between the last loss readout and step {self.step}; "
                "the optimizers skipped the bad updates, but batch-norm statistics may be affected.",
                "lower the learning rate, check the data for NaN/inf or extreme values, try precision fp32, "
                "or set nan_policy='skip' to skip (and check) every batch.")

    def _finite(self, loss: torch.Tensor, which: str) -> bool:
        if self._all_ok(torch.isfinite(loss.detach()).all()):
            return True
        with torch.no_grad():  # undo the running statistics of the bad batch
            for buf, saved in getattr(self, "_saved_buffers", []):
                buf.copy_(saved)
        if self.config.nan_policy == "skip":
            return False
        raise TrainingError(
            f"the {which} loss became {float(loss.detach())} at step {self.step + 1}; training stopped and the "
            "weights of the last good step were kept.",
            "lower the learning rate, check the data for NaN/inf or extreme values, try precision fp32, "
            "or set nan_policy='skip' to skip bad batches.")

    # ----------------------------------------------------------------------- previews/metrics
    @torch.no_grad()
    def preview(self) -> PreviewEvent:
        """G (eval mode) and D maps on the fixed preview patch; consumes no random numbers."""
        a = self.preview_a.to(self.device)
        b = self.preview_b.to(self.device)
        was_g, was_d = self.generator.training, self.discriminator.training
        self.generator.eval()
        self.discriminator.eval()
        try:
            fake = self.generator(a)
            d_real = self.discriminator(torch.cat([a, b], 1))
            d_fake = self.discriminator(torch.cat([a, fake], 1))
        finally:
            self.generator.train(was_g)
            self.discriminator.train(was_d)
        from .metrics import error_map, ssim_map

        fake0, b0 = fake[:1].float().cpu(), b[:1].float().cpu()
        return PreviewEvent(self.step, a[0].float().cpu().numpy(), fake0[0].numpy(), b0[0].numpy(),
                            d_real[0, 0].float().cpu().numpy(), d_fake[0, 0].float().cpu().numpy(),
                            ssim=ssim_map(fake0, b0)[0].mean(0).numpy(), error=error_map(fake0, b0)[0].mean(0).numpy())

    @torch.no_grad()
    def validate(self) -> dict:
        """Metrics of G (eval mode) on the held-out patches; empty without a validation split."""
        if self.val_a is None:
            return {}
        from .metrics import image_metrics

        self.generator.eval()
        try:
            fake = torch.cat([self.generator(self.val_a[i:i + 4].to(self.device))
                              for i in range(0, len(self.val_a), 4)])
        finally:
            self.generator.train()
        labels = bool(getattr(self.dataset, "b_is_labels", False))
        norm_b = getattr(self.dataset, "norm_b", None)
        extra = {"encoding": norm_b.label_encoding, "top": norm_b.high} if labels and norm_b is not None else {}
        return image_metrics(fake.float().cpu(), self.val_b.float(), labels=labels, **extra)

    # ---------------------------------------------------------------------------- saving
    def checkpoint(self) -> Checkpoint:
        def plain(module):
            return {k: v.detach().cpu().clone() for k, v in getattr(module, "module", module).state_dict().items()}

        def cpu_state(opt):
            state = opt.state_dict()
            return {"state": {i: {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in st.items()}
                              for i, st in state["state"].items()},
                    "param_groups": state["param_groups"]}

        rng = {"sampler": self.sampler_rng.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        data = {}
        for side in ("a", "b"):
            norm = getattr(self.dataset, f"norm_{side}", None)
            if norm is not None:
                data[f"norm_{side}"] = norm.to_dict()
            data[f"{side}_is_labels"] = bool(getattr(self.dataset, f"{side}_is_labels", False))
        data["source"] = getattr(self.dataset, "source", {}) or {}
        data["task"] = data["source"].get("task", "translate")  # see napari_pix2pix.tasks
        return Checkpoint(model=self.model_config, step=self.step, training=self.config, data=data,
                          generator=plain(self.generator), discriminator=plain(self.discriminator),
                          optimizer_g=cpu_state(self.opt_g), optimizer_d=cpu_state(self.opt_d),
                          rng=rng, metrics=self.metrics, history=self.history)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the full training state atomically (rank 0 only under DDP)."""
        return save_checkpoint(path, self.checkpoint())

    def _side_path(self, name: str) -> Path | None:
        """``best.safetensors`` / ``metrics.csv`` beside the checkpoints (or beside ``out``)."""
        if self.config.checkpoint_dir:
            return Path(self.config.checkpoint_dir) / name
        if self.out is not None:
            return self.out.with_name(f"{self.out.stem}.{name}")
        return None

    def _record_validation(self, metrics: dict) -> Iterator:
        from .metrics import append_csv

        improved = self.best.update(self.step, metrics)
        self.metrics = {"step": self.step, **metrics,
                        "best": {"metric": self.best.metric, "value": self.best.best, "step": self.best.step}}
        self.history.append({"step": self.step, **{f"val_{k}": v for k, v in metrics.items()}})
        yield ValidationEvent(self.step, metrics)
        csv_path = self._side_path("metrics.csv")
        if csv_path is not None and self._fresh_csv:
            csv_path.unlink(missing_ok=True)  # a new run starts its own table; a resumed one appends
            self._fresh_csv = False
        if csv_path is not None:
            append_csv(csv_path, {"step": self.step, **metrics})
        best_path = self._side_path("best.safetensors")
        if improved and best_path is not None:
            yield SavedEvent(self.step, str(self.save(best_path)), best=True)

    def _checkpoint_paths(self) -> list[Path]:
        paths = []
        if self.config.checkpoint_dir:
            paths.append(Path(self.config.checkpoint_dir) / "last.safetensors")
        if self.out is not None:
            paths.append(self.out)
        return paths

    # ---------------------------------------------------------------------------- stream
    def _main_work_at(self, step: int) -> bool:
        """Whether rank 0 previews, validates or writes a checkpoint after ``step``."""
        cfg = self.config
        return self._validates_at(step) or any(every and step % every == 0
                                               for every in (cfg.preview_every, cfg.checkpoint_every))

    def _validates_at(self, step: int) -> bool:
        """Validation runs every ``validate_every`` steps and after the last one."""
        every = self.config.validate_every
        return bool(every and self.val_a is not None and (step % every == 0 or step == self.config.steps))

    def _readout_at(self, step: int) -> bool:
        """Whether step ``step`` (1-based) reads its losses back (always on CPU; see train_step)."""
        cfg = self.config
        return (self.syncs_every_step or step == 1 or step >= cfg.steps or step % max(cfg.log_every, 1) == 0
                or self._main_work_at(step))

    def _sync_buffers(self) -> None:
        """Average batch-norm running statistics over the ranks (DDP all-reduces gradients only),
        so that every rank holds the same full state and rank 0's checkpoint reflects all data."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        with torch.no_grad():
            for net in (self.generator, self.discriminator):
                for name, buf in net.named_buffers():
                    if buf.is_floating_point():
                        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                        buf.div_(self.world_size)

    def _finish_distributed(self, barrier: bool = True) -> None:
        """Wait for rank 0's final save, then end the process group this trainer started."""
        if self.world_size <= 1 or not getattr(self, "_owns_process_group", False):
            return
        import torch.distributed as dist

        if dist.is_initialized():
            if barrier:
                dist.barrier()
            dist.destroy_process_group()
        self._owns_process_group = False

    def events(self) -> Iterator:
        """Train until ``config.steps`` or :meth:`stop`, yielding events as they happen."""
        cfg = self.config
        start = time.perf_counter()
        try:
            while self.step < cfg.steps and not self._stop:
                t0 = time.perf_counter()
                try:
                    losses = self.train_step(readout=self._readout_at(self.step + 1))
                except (RuntimeError, MemoryError) as exc:
                    from .inference import is_out_of_memory

                    if not is_out_of_memory(exc):
                        raise
                    raise TrainingError(
                        f"out of memory at step {self.step + 1} (batch {cfg.batch_size}, crop {cfg.crop}, "
                        f"{self.model_config.generator} ngf {self.model_config.ngf}, device {self.device}).",
                        "lower the batch size or crop, use a smaller generator, --precision bf16/fp16, "
                        "or another device; the last checkpoint is kept.") from None
                if "skipped" in losses:
                    yield StepEvent(self.step, cfg.steps, losses, cfg.lr_at(self.step), 0.0)
                    continue
                record = {"step": self.step, **losses, "lr": cfg.lr_at(self.step - 1)}
                if self.step % max(cfg.log_every, 1) == 0 or self.step == cfg.steps:
                    self.history.append(record)
                if self.world_size > 1 and self._main_work_at(self.step):
                    self._sync_buffers()  # every rank, before rank 0 previews/validates/saves
                if not self.is_main:
                    continue
                yield StepEvent(self.step, cfg.steps, losses, record["lr"], time.perf_counter() - t0)
                if cfg.preview_every and self.step % cfg.preview_every == 0:
                    yield self.preview()
                if self._validates_at(self.step):
                    yield from self._record_validation(self.validate())
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    for path in self._checkpoint_paths()[:1] or []:
                        yield SavedEvent(self.step, str(self.save(path)))
        except TrainingError:
            if self.is_main:
                for path in self._checkpoint_paths():
                    self.save(path)
            self._finish_distributed(barrier=False)
            raise
        path = None
        if self.world_size > 1:
            self._sync_buffers()
        if self.is_main:
            for p in self._checkpoint_paths():
                path = str(self.save(p))
                yield SavedEvent(self.step, path)
        self._finish_distributed()
        yield FinishedEvent(self.step, path, self._stop, time.perf_counter() - start, list(self.history))

    def run(self, callback=None) -> FinishedEvent:
        """Consume :meth:`events` to the end, calling ``callback(event)`` for each."""
        last = None
        for event in self.events():
            if callback is not None:
                callback(event)
            last = event
        return last
