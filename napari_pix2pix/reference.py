"""Import of checkpoints saved by the reference PyTorch Pix2Pix implementation
(junyanz/pytorch-CycleGAN-and-pix2pix): ``*_net_G.pth`` generators and ``*_net_D.pth``
discriminators, converted to a napari-pix2pix ``.safetensors`` model file.

Safety: a ``.pth`` file is a pickle. It is read only with ``torch.load(..., weights_only=True)``,
whose restricted unpickler accepts tensors and plain containers and refuses anything else
*before* running it, so a crafted file cannot execute code; such a file gives a
:class:`~napari_pix2pix.errors.ModelFileError`. Nothing else in the package unpickles.

Architecture: taken from the options given (``generator``, ``norm``, ``ngf``, channels,
``dropout``; ``discriminator_layers``, ``ndf``) and otherwise inferred from the keys and shapes:
U-Net depth from the nesting of ``model.model.…``, ResNet blocks from ``model.N.conv_block``,
ngf and channels from the first and last convolutions, batch vs instance norm from running
statistics and convolution biases. Dropout cannot be read from a U-Net file (it has no weights):
it defaults to on, the reference's pix2pix default, and a note says so. Whatever is chosen is
then checked key by key; a mismatch raises :class:`ModelFileError` listing the missing,
unexpected and wrongly shaped keys.

Key mapping (reference -> ours): U-Net level k (0 outermost) lives under ``model.model.`` +
``1.model.`` (level 1) + ``3.model.`` per further level; its down conv is ``.0`` (outermost) or
``.1``, down norm ``.2``; its up conv ``.3`` (outermost and innermost) or ``.5``, up norm ``.4``
(innermost) or ``.6``. ResNet ``model.N`` -> ``net.N`` with ``conv_block`` -> ``body``;
PatchGAN ``model.N`` -> ``net.N``; PixelGAN ``net.N`` -> ``net.N`` (same layer order).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import ModelConfig, unet_depth
from .errors import ConfigError, ModelFileError
from .checkpoint import key_mismatch

KIND = "reference pix2pix"
_FIX_FILE = ("choose a generator (*_net_G.pth) or discriminator (*_net_D.pth) saved by the reference "
             "pytorch-CycleGAN-and-pix2pix code.")


@dataclass
class ImportResult:
    """What :func:`import_reference` wrote: the file, its architecture, and notes for the user
    (e.g. that dropout was assumed)."""

    path: Path
    model: ModelConfig
    notes: list = field(default_factory=list)
    imported_from: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------- reading
def _sniff(path: Path) -> None:
    """Refuse, before unpickling anything, files that are clearly not torch checkpoints."""
    from .checkpoint import _describe_foreign

    if not path.exists():
        raise ModelFileError(f"{str(path)!r} does not exist.", _FIX_FILE)
    if not path.is_file():
        raise ModelFileError(f"{str(path)!r} is not a file.", _FIX_FILE)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if path.suffix.lower() == ".safetensors":  # torch.load would hand such a name to safetensors
        what = _describe_foreign(head)
        what = ("it is a safetensors file (napari-pix2pix model files need no import: open them directly)"
                if what == "its header is not safetensors" else f"it is named .safetensors but {what[3:]}")
        raise ModelFileError(f"{path.name} cannot be imported: {what}.", _FIX_FILE)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return  # zip-format torch file (torch >= 1.6) or a legacy pickle-format one
    if len(head) < 8:
        what = f"it is only {len(head)} bytes long"
    elif len(head) > 8 and head[8:9] == b"{":
        what = "it is a safetensors file (napari-pix2pix model files need no import: open them directly)"
    else:
        what = _describe_foreign(head)
        if what == "its header is not safetensors":
            what = "it is not a PyTorch checkpoint"
    raise ModelFileError(f"{path.name} cannot be imported: {what}.", _FIX_FILE)


def read_reference_state(path: str | os.PathLike) -> dict:
    """The tensors of a reference checkpoint, read with ``torch.load(weights_only=True)`` only.

    Accepts a plain ``state_dict`` (what the reference saves), also nested under
    ``state_dict``/``model``, and strips a ``module.`` (DataParallel) prefix.
    """
    import pickle

    import torch

    path = Path(path)
    _sniff(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(
            f"{path.name} was refused: it holds Python objects other than tensors, and unpickling "
            "them could run code, so it was not loaded (nothing in it was executed).",
            "import only plain state_dict files (torch.save(net.state_dict(), ...)) from sources you "
            "trust; re-save the weights as a plain state_dict.") from None
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, UnicodeDecodeError, MemoryError) as exc:
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise ModelFileError(f"{path.name} is damaged or truncated and could not be read ({detail}).",
                             "copy the checkpoint again or choose another one.") from None
    if isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
        for key in ("state_dict", "model_state_dict", "model", "netG", "netD"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ModelFileError(f"{path.name} does not hold a state_dict (it holds {type(obj).__name__}).",
                             _FIX_FILE)
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise ModelFileError(f"{path.name} holds entries that are not named tensors: {_show(bad)}.", _FIX_FILE)
    _check_expansion(obj, path)
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _check_expansion(state: dict, path: Path) -> None:
    """Refuse tensors that would grow far beyond what the file stores when copied: stride-0
    (expanded) or overlapping views of one small storage. Each tensor is materialised later
    (``contiguous().clone()``), so the total is capped at the stored bytes plus
    :data:`~napari_pix2pix.limits.MAX_EXPANSION_BYTES`."""
    from .limits import MAX_EXPANSION_BYTES

    stored: dict = {}
    needed = 0
    for value in state.values():
        needed += value.numel() * value.element_size()
        storage = value.untyped_storage()
        stored[storage.data_ptr()] = max(stored.get(storage.data_ptr(), 0), storage.nbytes())
    have = sum(stored.values())
    if needed > have + MAX_EXPANSION_BYTES:
        raise ModelFileError(
            f"{path.name} stores {have / 2**20:.1f} MiB of tensors that would expand to {needed / 2**20:,.0f} MiB "
            "when copied (stride-0 or overlapping views); a saved state_dict never does that.",
            "import a plain state_dict saved with torch.save(net.state_dict(), ...) from a source you trust.")


def file_sha256(path: str | os.PathLike) -> str:
    from .model import file_sha256 as _sha

    return _sha(path)


# ----------------------------------------------------------------------------- inference
def _show(keys, n: int = 6) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _unet_prefix(k: int) -> str:
    prefix = "model.model."
    for level in range(1, k + 1):
        prefix += ("1" if level == 1 else "3") + ".model."
    return prefix


def _conv_indices(state: dict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    found = set()
    for key, value in state.items():
        m = rx.fullmatch(key)
        if m and value.dim() == 4:
            found.add(int(m.group(1)))
    return sorted(found)


def _infer_norm(state: dict, first_conv: str) -> str | None:
    """batch: norms with weights and running statistics; instance: none of that, conv biases."""
    for key in state:
        if key.endswith(".running_mean") and key[: -len("running_mean")] + "weight" in state:
            return "batch"
    if first_conv + ".bias" in state:
        return "instance"
    return None


def _stale_instance_stats(state: dict) -> list[str]:
    """Running statistics without a norm weight: instance norms saved by torch < 0.4."""
    stale = []
    for key in state:
        for suffix in ("running_mean", "running_var", "num_batches_tracked"):
            if key.endswith("." + suffix) and key[: -len(suffix)] + "weight" not in state:
                stale.append(key)
    return stale


def infer_generator(state: dict) -> dict:
    """Architecture options read from a reference generator's keys and shapes (those it can tell).

    Returns a dict with some of ``generator``, ``norm``, ``ngf``, ``in_channels``,
    ``out_channels``, ``dropout`` (ResNet only). Raises :class:`ModelFileError` when the keys
    look like a discriminator.
    """
    found: dict = {}
    if "model.model.0.weight" in state:
        depth = 1
        while any(k.startswith(_unet_prefix(depth)) for k in state):
            depth += 1
        found["generator"] = f"unet_{2 ** depth}"
        first = state["model.model.0.weight"]
        found["ngf"], found["in_channels"] = int(first.shape[0]), int(first.shape[1])
        last = state.get("model.model.3.weight")
        if last is not None and last.dim() == 4:
            found["out_channels"] = int(last.shape[1])
        norm = _infer_norm(state, "model.model.0")
    elif any(".conv_block." in k for k in state) and "model.1.weight" in state:
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        found["generator"] = f"resnet_{len(blocks)}blocks"
        first = state["model.1.weight"]
        found["ngf"], found["in_channels"] = int(first.shape[0]), int(first.shape[1])
        convs = _conv_indices(state, r"model\.(\d+)\.weight")
        if convs:
            found["out_channels"] = int(state[f"model.{convs[-1]}.weight"].shape[0])
        found["dropout"] = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) and v.dim() == 4
                               for k, v in state.items())
        norm = _infer_norm(state, "model.1")
    else:
        if looks_like_discriminator(state):
            raise ModelFileError(
                "the file is a discriminator (*_net_D.pth), not a generator; a discriminator alone "
                "cannot translate images.",
                "import the generator and add this file with --discriminator, e.g. "
                "`python -m napari_pix2pix import latest_net_G.pth --discriminator latest_net_D.pth "
                "--out model.safetensors`.")
        return found
    if norm is not None:
        found["norm"] = norm
    return found


def looks_like_discriminator(state: dict) -> bool:
    if "net.0.weight" in state:
        return True
    if "model.0.weight" in state and not any(".conv_block." in k for k in state) \
            and "model.model.0.weight" not in state:
        return True
    return False


def infer_discriminator(state: dict) -> dict:
    """``discriminator`` (patch | pixel), ``discriminator_layers``, ``ndf``, ``channels``, ``norm``."""
    found: dict = {}
    if "net.0.weight" in state:
        found["discriminator"] = "pixel"
        first = state["net.0.weight"]
        norm = _infer_norm(state, "net.2")
    elif "model.0.weight" in state:
        found["discriminator"] = "patch"
        first = state["model.0.weight"]
        convs = _conv_indices(state, r"model\.(\d+)\.weight")
        found["discriminator_layers"] = len(convs) - 2
        norm = _infer_norm(state, "model.2")
    else:
        return found
    found["ndf"], found["channels"] = int(first.shape[0]), int(first.shape[1])
    if norm is not None:
        found["norm"] = norm
    return found


# --------------------------------------------------------------------------- key mapping
def generator_key_map(config: ModelConfig) -> dict:
    """Our generator's state_dict key -> the reference's key, for ``config``."""
    import torch

    from .models import build_generator

    with torch.device("meta"):  # keys only: allocates nothing
        net = build_generator(config, init=False)
    depth = unet_depth(config.generator)
    mapping = {}
    for key in net.state_dict():
        if depth is not None:
            part, k, i, rest = key.split(".", 3)
            k, i = int(k), int(i)
            if part == "down":
                idx = {0: "0"} if k == 0 else {0: "1", 1: "2"}
            elif k == 0:
                idx = {0: "3"}
            elif k == depth - 1:
                idx = {0: "3", 1: "4"}
            else:
                idx = {0: "5", 1: "6"}
            mapping[key] = f"{_unet_prefix(k)}{idx[i]}.{rest}"
        else:
            mapping[key] = "model." + key[len("net."):].replace(".body.", ".conv_block.", 1)
    return mapping


def discriminator_key_map(config: ModelConfig) -> dict:
    """Our discriminator's state_dict key -> the reference's key (patch: ``model.N``, pixel: ``net.N``)."""
    import torch

    from .models import build_discriminator

    with torch.device("meta"):  # keys only: allocates nothing
        net = build_discriminator(config, init=False)
    prefix = "model." if config.discriminator == "patch" else "net."
    return {key: prefix + key[len("net."):] for key in net.state_dict()}


def _describe(config: ModelConfig, what: str) -> str:
    if what == "generator":
        return (f"{config.generator} (norm {config.norm}, ngf {config.ngf}, "
                f"{config.in_channels} -> {config.out_channels} channels)")
    layers = f"{config.discriminator_layers} layers, " if config.discriminator == "patch" else ""
    return (f"a {config.discriminator} discriminator ({layers}norm {config.norm}, ndf {config.ndf}, "
            f"{config.in_channels + config.out_channels} input channels)")


def _convert(state: dict, mapping: dict, config: ModelConfig, what: str, name: str, hint: str) -> dict:
    """Rename ``state`` to our keys, checking every key and shape against ``mapping``."""
    import torch

    from .models import build_discriminator, build_generator

    build = build_generator if what == "generator" else build_discriminator
    with torch.device("meta"):  # shapes and dtypes only: nothing is allocated before the checks pass
        own = build(config, init=False).state_dict()
    expected = {ref: ours for ours, ref in mapping.items()}
    missing = [ref for ref in mapping.values() if ref not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{ref} {tuple(state[ref].shape)} vs {tuple(own[ours].shape)}" for ref, ours in expected.items()
             if ref in state and tuple(state[ref].shape) != tuple(own[ours].shape)]
    if missing or unexpected or wrong:
        raise ModelFileError(f"{name}: the {what} weights do not fit {_describe(config, what)} "
                             f"({key_mismatch(missing, unexpected, wrong)}).", hint)
    out = {}
    for ours, ref in mapping.items():
        t = state[ref].detach().to("cpu")
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()):
                raise ModelFileError(f"{name}: tensor {ref} holds NaN or infinite values.",
                                     "the checkpoint is broken (training diverged); use an earlier one.")
            t = t.to(own[ours].dtype)
        elif t.dtype != own[ours].dtype:
            t = t.to(own[ours].dtype)
        out[ours] = t.contiguous().clone()
    build(config, init=False).load_state_dict(out)  # cannot fail after the checks above; proves it loads
    return out


def _model_config(**kwargs) -> ModelConfig:
    from .limits import check_architecture

    try:
        config = ModelConfig(**kwargs)
        check_architecture(config)
        return config
    except ConfigError as exc:
        raise ModelFileError(f"the architecture cannot be built: {exc.problem}", exc.fix) from None


_NAMES = {"generator": "--generator", "norm": "--norm", "ngf": "--ngf", "in_channels": "--in-channels",
          "out_channels": "--out-channels"}


def convert_generator(state: dict, *, name: str = "G.pth", generator: str | None = None,
                      norm: str | None = None, ngf: int | None = None, in_channels: int | None = None,
                      out_channels: int | None = None, dropout: bool | None = None,
                      ndf: int | None = None) -> tuple[ModelConfig, dict, list]:
    """``(ModelConfig, our generator state_dict, notes)`` for a reference generator ``state``.

    Options given override what is inferred from the keys; everything is checked key by key.
    """
    notes: list[str] = []
    found = infer_generator(state)
    stale = _stale_instance_stats(state)
    given = {"generator": generator, "norm": norm, "ngf": ngf, "in_channels": in_channels,
             "out_channels": out_channels}
    options = {k: (v if v is not None else found.get(k)) for k, v in given.items()}
    if options["norm"] is None and stale and found.get("generator"):
        options["norm"] = "instance"
    if options["norm"] == "instance" and stale:
        state = {k: v for k, v in state.items() if k not in stale}
        notes.append(f"ignored {len(stale)} instance-norm running statistics (saved by an old PyTorch; "
                     "the reference ignores them too).")
    unknown = [k for k, v in options.items() if v is None]
    if unknown:
        if not found:
            problem = f"{name}: the architecture cannot be told from its keys ({_show(sorted(state), 4)})"
        else:
            problem = f"{name}: the file does not say its {', '.join(u.replace('_', ' ') for u in unknown)}"
        if options["norm"] is None and found:
            problem += " (no running statistics and no convolution biases: norm 'none' is not supported)"
        raise ModelFileError(problem + ".",
                             "pass the reference's options: " + " ".join(f"{_NAMES[u]} ..." for u in unknown)
                             + " (the values used to train it).")
    if options["norm"] == "none":
        raise ModelFileError(f"{name}: norm 'none' cannot be imported (the reference then drops all "
                             "convolution biases, which napari-pix2pix's norm-free networks keep).",
                             "import a checkpoint trained with --norm batch or --norm instance.")
    if dropout is None:
        if "dropout" in found and options["generator"] == found.get("generator"):
            dropout = bool(found["dropout"])
        elif unet_depth(str(options["generator"])) is not None:
            dropout = True
            if unet_depth(options["generator"]) >= 6:
                notes.append("dropout cannot be read from a U-Net file; assumed on (the reference's pix2pix "
                             "default). Pass --no-dropout if it was trained with --no_dropout; it only matters "
                             "for the 'train' test-time mode.")
        else:
            dropout = False
    config = _model_config(**options, dropout=bool(dropout), unet_skips=True,
                           **({"ndf": ndf} if ndf is not None else {}))
    if found and all(found.get(k) is not None for k in given):
        guess = _model_config(**{k: found[k] for k in given}, dropout=bool(found.get("dropout", dropout)))
        hint = (f"the file looks like {_describe(guess, 'generator')}: leave out the architecture options "
                "to use what the file says, or pass the options it was trained with.")
    else:
        hint = "pass the reference's architecture options (--generator, --norm, --ngf, --in-channels, --out-channels)."
    ours = _convert(state, generator_key_map(config), config, "generator", name, hint)
    return config, ours, notes


def convert_discriminator(state: dict, config: ModelConfig, *, name: str = "D.pth",
                          discriminator_layers: int | None = None, ndf: int | None = None
                          ) -> tuple[ModelConfig, dict, list]:
    """``(config with the discriminator's options, our discriminator state_dict, notes)`` for a
    reference discriminator ``state`` that goes with the generator of ``config``."""
    found = infer_discriminator(state)
    if not found:
        if "model.model.0.weight" in state or any(".conv_block." in k for k in state):
            raise ModelFileError(f"{name} is a generator (*_net_G.pth), not a discriminator.",
                                 "pass the *_net_D.pth file with --discriminator.")
        raise ModelFileError(f"{name}: the discriminator architecture cannot be told from its keys "
                             f"({_show(sorted(state), 4)}).", "pass a basic (PatchGAN) or pixel discriminator.")
    channels = config.in_channels + config.out_channels
    if found["channels"] != channels:
        raise ModelFileError(f"{name}: the discriminator takes {found['channels']} input channels but the "
                             f"generator maps {config.in_channels} -> {config.out_channels}, which needs "
                             f"{channels}.", "pass the discriminator trained together with this generator.")
    if found.get("norm") is not None and found["norm"] != config.norm:
        raise ModelFileError(f"{name}: the discriminator uses {found['norm']} norm but the generator "
                             f"{config.norm} norm; a napari-pix2pix model has one norm for both.",
                             "pass the discriminator trained together with this generator.")
    options = {"discriminator": found["discriminator"],
               "ndf": ndf if ndf is not None else found["ndf"]}
    if found["discriminator"] == "patch":
        options["discriminator_layers"] = (discriminator_layers if discriminator_layers is not None
                                           else found["discriminator_layers"])
    d_config = _model_config(**{**config.to_dict(), **options})
    hint = (f"the file looks like a {found['discriminator']} discriminator"
            + (f" with {found.get('discriminator_layers')} layers" if found["discriminator"] == "patch" else "")
            + f" and ndf {found['ndf']}: leave out --discriminator-layers/--ndf, or pass the values it was "
            "trained with.")
    ours = _convert(state, discriminator_key_map(d_config), d_config, "discriminator", name, hint)
    return d_config, ours, []


# ------------------------------------------------------------------------------- import
def import_reference(path: str | os.PathLike, out: str | os.PathLike, *, generator: str | None = None,
                     norm: str | None = None, ngf: int | None = None, in_channels: int | None = None,
                     out_channels: int | None = None, dropout: bool | None = None,
                     discriminator: str | os.PathLike | None = None,
                     discriminator_layers: int | None = None, ndf: int | None = None) -> ImportResult:
    """Convert a reference generator checkpoint ``path`` (optionally with its discriminator
    ``discriminator``) into a napari-pix2pix model file ``out``.

    Every option left as None is inferred from the file (``dropout`` for a U-Net defaults to on,
    the reference's pix2pix default). Raises :class:`ModelFileError` for anything that cannot be
    imported. The model file records ``imported_from`` (file name, sha256, kind) in its metadata.
    """
    from .checkpoint import Checkpoint, save_checkpoint

    path, out = Path(path), Path(out)
    if out.exists() and out.resolve() == path.resolve():
        raise ModelFileError(f"the output {out.name} is the checkpoint being imported.",
                             "choose another --out file, e.g. model.safetensors.")
    if out.is_dir():
        raise ModelFileError(f"the output {str(out)!r} is a folder.", "pass a file name such as model.safetensors.")
    state = read_reference_state(path)
    config, g_state, notes = convert_generator(state, name=path.name, generator=generator, norm=norm, ngf=ngf,
                                               in_channels=in_channels, out_channels=out_channels,
                                               dropout=dropout, ndf=ndf)
    info = {"file": path.name, "sha256": file_sha256(path), "kind": KIND}
    d_state: dict = {}
    if discriminator is not None:
        d_path = Path(discriminator)
        config, d_state, d_notes = convert_discriminator(read_reference_state(d_path), config, name=d_path.name,
                                                         discriminator_layers=discriminator_layers, ndf=ndf)
        notes += d_notes
        info["discriminator"] = {"file": d_path.name, "sha256": file_sha256(d_path), "kind": KIND}
    elif discriminator_layers is not None:
        config = _model_config(**{**config.to_dict(), "discriminator_layers": discriminator_layers})
    info["architecture"] = config.to_dict()
    if notes:
        info["notes"] = notes
    ckpt = Checkpoint(model=config, step=0, data={"a_is_labels": False, "b_is_labels": False},
                      generator=g_state, discriminator=d_state,
                      metadata={"imported_from": json.dumps(info)})
    written = save_checkpoint(out, ckpt)
    return ImportResult(path=written, model=config, notes=notes, imported_from=info)
