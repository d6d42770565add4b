"""The ComfyUI node pack (nodes/), loaded the way ComfyUI loads a custom node: from its file path,
as a package that is not the top-level ``nodes`` module (ComfyUI's own core module has that name).

ComfyUI itself is not installed: ``comfy.utils``, ``comfy.model_management`` and ``folder_paths``
are faked in ``sys.modules`` to check that the runtime hooks are used when present; without them
the nodes must run in plain Python.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_pix2pix.config import TileConfig
from napari_pix2pix.errors import ConfigError, DatasetError, InputError, ModelFileError, Pix2PixError

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / "nodes"
EXAMPLES = PACK / "examples"
BUILTINS = {  # the ComfyUI core nodes the example workflows use: (inputs, RETURN_TYPES)
    "LoadImage": ({"image": "COMBO"}, ("IMAGE", "MASK")),
    "SaveImage": ({"images": "IMAGE", "filename_prefix": "STRING"}, ()),
    "PreviewImage": ({"images": "IMAGE"}, ()),
}
TINY = dict(steps=10, generator="unet_32", ngf=8, ndf=8, norm="batch", dropout=True, discriminator="patch",
            discriminator_layers=2, crop=32, batch_size=1, lr=2e-4, lambda_l1=100.0, gan_mode="vanilla",
            seed=0, device="cpu", precision="fp32", preset="none")


# ------------------------------------------------------------------------------- loading
def load_pack(name: str, init: Path = PACK / "__init__.py", search=None, comfy_core: bool = False):
    """Import a pack like ComfyUI: spec from the file path, registered under ``name``. With
    ``comfy_core``, an empty module stands in for ComfyUI's own top-level ``nodes`` module while
    the pack imports (so this repository's ``nodes/`` folder is not mistaken for it)."""
    if comfy_core:
        saved = sys.modules.get("nodes")
        sys.modules["nodes"] = types.ModuleType("nodes")
        try:
            return load_pack(name, init, search)
        finally:
            if saved is None:
                sys.modules.pop("nodes", None)
            else:
                sys.modules["nodes"] = saved
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        fake_parent = types.ModuleType(parent)
        fake_parent.__path__ = []
        sys.modules[parent] = fake_parent
    if search is None:
        spec = importlib.util.spec_from_file_location(name, init)  # ComfyUI passes no search locations
    else:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack():
    comfy_core = types.ModuleType("nodes")  # stands in for ComfyUI's own top-level `nodes`
    saved = sys.modules.get("nodes")
    sys.modules["nodes"] = comfy_core
    try:
        module = load_pack("custom_nodes.napari_pix2pix_nodes", search=[str(PACK)])
        assert sys.modules["nodes"] is comfy_core, "the pack replaced ComfyUI's `nodes` module"
    finally:
        if saved is None:
            sys.modules.pop("nodes", None)
        else:
            sys.modules["nodes"] = saved
    return module


@pytest.fixture(scope="module")
def N(pack):
    return pack.NODE_CLASS_MAPPINGS


@pytest.fixture(scope="module")
def rt(pack):
    return sys.modules[pack.__name__ + "._runtime"]


@pytest.fixture(autouse=True)
def no_comfy(monkeypatch, tmp_path_factory):
    """Default: plain Python (no ComfyUI modules), models in a temporary folder."""
    for name in ("comfy", "comfy.utils", "comfy.model_management", "folder_paths", "server"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv("NAPARI_PIX2PIX_MODEL_DIR", str(tmp_path_factory.mktemp("plain-models")))


class FakeInterrupt(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    """Minimal fakes of the ComfyUI runtime modules the pack uses."""
    state = types.SimpleNamespace(interrupt=False, interrupt_after=None, updates=0, bars=[], device_calls=0)
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = FakeInterrupt

    def processing_interrupted():
        return state.interrupt

    def throw_exception_if_processing_interrupted():
        if state.interrupt:
            state.interrupt = False
            raise FakeInterrupt()

    def get_torch_device():
        state.device_calls += 1
        return torch.device("cpu")

    mm.processing_interrupted = processing_interrupted
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.get_torch_device = get_torch_device

    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total):
            self.total, self.current = total, 0
            state.bars.append(self)

        def update(self, value):
            self.update_absolute(self.current + value)

        def update_absolute(self, value, total=None, preview=None):
            if total is not None:
                self.total = total
            self.current = value
            state.updates += 1
            if state.interrupt_after is not None and state.updates >= state.interrupt_after:
                state.interrupt = True
            throw_exception_if_processing_interrupted()  # what ComfyUI's progress hook does

    utils.ProgressBar = ProgressBar
    comfy_pkg = types.ModuleType("comfy")
    comfy_pkg.__path__ = []
    comfy_pkg.utils, comfy_pkg.model_management = utils, mm

    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(tmp_path / "models")
    fp.folder_names_and_paths = {"checkpoints": ([str(tmp_path / "models" / "checkpoints")], {".safetensors"})}
    (tmp_path / "input").mkdir()

    def get_folder_paths(name):
        return fp.folder_names_and_paths[name][0]

    def get_filename_list(name):
        paths, exts = fp.folder_names_and_paths[name]
        out = []
        for root in paths:
            for dirpath, _, files in os.walk(root):
                for f in files:
                    if not exts or os.path.splitext(f)[1].lower() in exts:
                        out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
        return sorted(out)

    def get_full_path(name, filename):
        for root in fp.folder_names_and_paths[name][0]:
            full = os.path.join(root, filename)
            if os.path.isfile(full):
                return full
        return None

    fp.get_folder_paths, fp.get_filename_list, fp.get_full_path = get_folder_paths, get_filename_list, get_full_path
    fp.get_input_directory = lambda: str(tmp_path / "input")
    server = types.ModuleType("server")  # PromptServer.instance.send_progress_text(text, node_id)
    state.texts = []
    server.PromptServer = types.SimpleNamespace(instance=types.SimpleNamespace(
        send_progress_text=lambda text, node_id, sid=None: state.texts.append((node_id, text))))
    for name, module in (("comfy", comfy_pkg), ("comfy.utils", utils), ("comfy.model_management", mm),
                         ("folder_paths", fp), ("server", server)):
        monkeypatch.setitem(sys.modules, name, module)
    state.folder_paths, state.tmp = fp, tmp_path
    return state


# ------------------------------------------------------------------------------ helpers
def images(b=2, h=40, w=48, c=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((b, h, w, c), dtype=np.float32))


def defaults(cls) -> dict:
    """Widget defaults from INPUT_TYPES (what a freshly placed node would send)."""
    out = {}
    for section in ("required", "optional"):
        for name, spec in cls.INPUT_TYPES().get(section, {}).items():
            if len(spec) > 1 and "default" in spec[1]:
                out[name] = spec[1]["default"]
    return out


def call(cls, **inputs):
    """Call a node as ComfyUI does: an instance, FUNCTION, keyword inputs; unwrap ui results."""
    kwargs = defaults(cls)
    kwargs.update(inputs)
    result = getattr(cls(), cls.FUNCTION)(**kwargs)
    return result["result"] if isinstance(result, dict) else result


def check_outputs(cls, result, batch=None, size=None):
    """Outputs match RETURN_TYPES: IMAGE [B,H,W,3] float32 0..1, MASK [B,H,W] 0..1, ..."""
    from napari_pix2pix.data.sources import PairedDataset
    from napari_pix2pix.model import Pix2PixModel

    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES)
    for kind, value in zip(cls.RETURN_TYPES, result):
        if kind == "IMAGE":
            assert isinstance(value, torch.Tensor) and value.dtype == torch.float32
            assert value.ndim == 4 and value.shape[-1] == 3
            assert float(value.min()) >= 0 and float(value.max()) <= 1
            if batch is not None:
                assert value.shape[0] == batch
            if size is not None:
                assert tuple(value.shape[1:3]) == size
        elif kind == "MASK":
            assert isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.ndim == 3
            assert float(value.min()) >= 0 and float(value.max()) <= 1
            if batch is not None:
                assert value.shape[0] == batch
            if size is not None:
                assert tuple(value.shape[1:]) == size
        elif kind == "STRING":
            assert isinstance(value, str)
        elif kind == "PIX2PIX_MODEL":
            assert isinstance(value, Pix2PixModel)
        elif kind == "PIX2PIX_DATASET":
            assert isinstance(value, PairedDataset) and len(value) > 0
        else:  # pragma: no cover
            raise AssertionError(f"unknown return type {kind}")


def tiny_model(in_channels=3, out_channels=3):
    """A random model of the tiny architecture (no training)."""
    from napari_pix2pix.checkpoint import Checkpoint
    from napari_pix2pix.config import ModelConfig
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import build_discriminator, build_generator

    cfg = ModelConfig(generator="unet_32", ngf=8, ndf=8, discriminator_layers=2, in_channels=in_channels,
                      out_channels=out_channels)
    return Pix2PixModel.from_checkpoint(Checkpoint(model=cfg, generator=build_generator(cfg).state_dict(),
                                                   discriminator=build_discriminator(cfg).state_dict()))


@pytest.fixture(scope="module")
def trained(N, tmp_path_factory):
    """Pair -> Train (10 steps) under inference mode, as ComfyUI runs nodes: an RGB -> gray model."""
    a = images(2, 40, 48, 3)
    b = a.mean(-1, keepdim=True).repeat(1, 1, 1, 3) * 0.8  # a gray target stored as RGB
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAPARI_PIX2PIX_MODEL_DIR", str(tmp_path_factory.mktemp("trained-models")))
        with torch.inference_mode():
            a, b = a.clone(), b.clone()  # inference tensors, like ComfyUI's
            dataset, report = call(N["Pix2PixPairImages"], images_a=a, images_b=b)
            model, curve, train_report = call(N["Pix2PixTrain"], dataset=dataset, **TINY)
    return types.SimpleNamespace(a=a, b=b, dataset=dataset, report=report, model=model, curve=curve,
                                 train_report=train_report)


# ===================================================================== loading like ComfyUI
def test_pack_loads_from_file_path_as_non_top_level_package(pack, N):
    assert pack.__name__ == "custom_nodes.napari_pix2pix_nodes"
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(N)
    assert {"Pix2PixLoadModel", "Pix2PixSaveModel", "Pix2PixPairImages", "Pix2PixTrain", "Pix2PixTranslate",
            "Pix2PixDiscriminatorMap"} <= set(N)
    # no module of ours ended up under ComfyUI's top-level name
    mod = sys.modules.get("nodes")
    assert mod is None or not str(getattr(mod, "__file__", "") or "").startswith(str(PACK))


def test_pack_sources_use_relative_imports_only():
    for path in PACK.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "nodes" for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert (node.module or "").split(".")[0] != "nodes", path


def test_node_classes_follow_the_comfyui_api(N):
    for key, cls in N.items():
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"} and "required" in spec, key
        assert isinstance(cls.RETURN_TYPES, tuple) and isinstance(cls.CATEGORY, str), key
        assert len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES), key
        params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
        names = [p for p, v in params.items() if p != "self" and v.kind is not inspect.Parameter.VAR_KEYWORD]
        takes_any = any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())
        required, optional = spec["required"], spec.get("optional", {})
        inputs = set(required) | set(optional) | set(spec.get("hidden", {}))
        assert set(names) <= inputs and (takes_any or set(names) == inputs), key
        for name in set(optional) | set(spec.get("hidden", {})):
            assert name not in params or params[name].default is not inspect.Parameter.empty, (key, name)
        for name in set(required) - set(names):  # generated inputs arrive as keywords
            assert takes_any, (key, name)
        for name, entry in {**required, **optional}.items():
            kind = entry[0]
            if isinstance(kind, list):  # combo: the default is one of the choices
                default = entry[1].get("default") if len(entry) > 1 else None
                assert default is None or default in kind, (key, name)
            elif kind in ("INT", "FLOAT"):
                opts = entry[1]
                assert opts["min"] <= opts["default"] <= opts["max"], (key, name)


def test_choices_and_defaults_come_from_the_engine_config(N):
    from napari_pix2pix import config as C

    spec = N["Pix2PixTrain"].INPUT_TYPES()
    train = {**spec["required"], **spec["optional"]}
    assert train["generator"][0] == list(C.GENERATOR_CHOICES)
    assert train["generator"][1]["default"] == C.ModelConfig().generator
    assert train["gan_mode"][0] == list(C.GAN_MODE_CHOICES)
    assert train["norm"][0] == list(C.NORM_CHOICES)
    assert train["steps"][1]["default"] == C.TrainConfig().steps
    assert train["lr"][1]["default"] == C.TrainConfig().lr
    tr = N["Pix2PixTranslate"].INPUT_TYPES()
    assert tr["required"]["mode"][0] == list(C.TEST_MODE_CHOICES)
    assert tr["required"]["tile"][1]["default"] == C.TileConfig().tile
    assert tr["required"]["device"][0][:len(C.DEVICE_CHOICES)] == list(C.DEVICE_CHOICES)
    folders = N["Pix2PixPairFolders"].INPUT_TYPES()["required"]
    assert folders["normalization_a"][0] == list(C.NORM_MODE_CHOICES)


def test_symlinked_pack_loads_under_its_folder_name(tmp_path):
    """ComfyUI's own way: custom_nodes/<dir>/__init__.py imported as module <dir>."""
    custom = tmp_path / "custom_nodes"
    custom.mkdir()
    (custom / "pix2pix").symlink_to(PACK, target_is_directory=True)
    try:
        module = load_pack("pix2pix", custom / "pix2pix" / "__init__.py")
        assert "Pix2PixTranslate" in module.NODE_CLASS_MAPPINGS
    finally:
        for name in [m for m in sys.modules if m == "pix2pix" or m.startswith("pix2pix.")]:
            del sys.modules[name]


def _root_init_text() -> str:
    root = REPO / "__init__.py"
    return root.read_text() if root.is_file() else (PACK / "_repo_root_init.py").read_text()


def test_cloned_repository_loads_through_its_root_init(tmp_path):
    """The repository cloned into custom_nodes/: ComfyUI imports the checkout's __init__.py."""
    clone = tmp_path / "custom_nodes" / "napari-pix2pix"
    clone.mkdir(parents=True)
    (clone / "__init__.py").write_text(_root_init_text())
    (clone / "nodes").symlink_to(PACK, target_is_directory=True)
    (clone / "napari_pix2pix").symlink_to(REPO / "napari_pix2pix", target_is_directory=True)
    try:
        module = load_pack("napari-pix2pix", clone / "__init__.py")
        assert "Pix2PixTrain" in module.NODE_CLASS_MAPPINGS
        assert set(module.NODE_DISPLAY_NAME_MAPPINGS) == set(module.NODE_CLASS_MAPPINGS)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "napari-pix2pix"]:
            del sys.modules[name]


def test_root_init_is_harmless_when_pytest_imports_it_as_a_plain_module(tmp_path):
    """pytest imports a rootdir __init__.py as the plain module '__init__' when the checkout's
    folder name is not an identifier (napari-pix2pix): no relative import may run then."""
    init = tmp_path / "__init__.py"
    init.write_text(_root_init_text())
    spec = importlib.util.spec_from_file_location("__init__", init, submodule_search_locations=None)
    spec.submodule_search_locations = None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = ""
    spec.loader.exec_module(module)
    assert module.NODE_CLASS_MAPPINGS == {}


def test_checkout_without_installed_engine_uses_the_sibling_engine(tmp_path):
    """A clone in custom_nodes/ with napari_pix2pix not installed: the pack loads the checkout's
    engine under its own name, without putting the checkout on sys.path."""
    clone = tmp_path / "custom_nodes" / "napari-pix2pix"
    clone.mkdir(parents=True)
    (clone / "__init__.py").write_text(_root_init_text())
    (clone / "nodes").symlink_to(PACK, target_is_directory=True)
    (clone / "napari_pix2pix").symlink_to(REPO / "napari_pix2pix", target_is_directory=True)
    script = f"""
import importlib.abc, importlib.util, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "napari_pix2pix":
            raise ImportError("not installed", name=name)
sys.meta_path.insert(0, Block())
clone = {str(clone)!r}
spec = importlib.util.spec_from_file_location("napari-pix2pix", clone + "/__init__.py")
module = importlib.util.module_from_spec(spec)
sys.modules["napari-pix2pix"] = module
spec.loader.exec_module(module)
engine = sys.modules["napari_pix2pix"]
assert "Pix2PixTrain" in module.NODE_CLASS_MAPPINGS
assert engine.__file__.endswith("napari_pix2pix/__init__.py"), engine.__file__
assert clone not in sys.path and "nodes" not in sys.modules
module.NODE_CLASS_MAPPINGS["Pix2PixTrain"].INPUT_TYPES()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


# ======================================================================= runtime hooks
def test_runtime_falls_back_to_no_ops_without_comfyui(rt, tmp_path, monkeypatch):
    from napari_pix2pix.devices import resolve_device

    bar = rt.progress_bar(5)
    bar.update(1)
    bar.update_absolute(3, 5)
    assert isinstance(bar, rt.NullProgress) and bar.current == 3
    assert rt.processing_interrupted() is False
    rt.throw_if_interrupted()
    assert rt.interrupt_types() == (KeyboardInterrupt,)
    assert rt.interrupt_exception("x") is None
    assert rt.torch_device("auto") == resolve_device("auto")
    assert rt.register_model_folder() is False
    monkeypatch.setenv("NAPARI_PIX2PIX_MODEL_DIR", str(tmp_path))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.safetensors").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert rt.list_models() == ["sub/m.safetensors"]
    assert rt.data_folder("some/where", "A") == Path("some/where")


def test_runtime_uses_comfyui_hooks_when_present(rt, N, comfy):
    fp = comfy.folder_paths
    extra = comfy.tmp / "extra_pix2pix"  # as if set in extra_model_paths.yaml
    fp.folder_names_and_paths["pix2pix"] = ([str(extra)], set())
    assert rt.register_model_folder() is True
    paths, exts = fp.folder_names_and_paths["pix2pix"]
    assert str(extra) in paths and os.path.join(fp.models_dir, "pix2pix") in paths and ".safetensors" in exts
    extra.mkdir()
    (extra / "a.safetensors").write_bytes(b"x")
    (extra / "b.ckpt").write_bytes(b"x")
    assert N["Pix2PixLoadModel"].INPUT_TYPES()["required"]["model_name"][0] == ["a.safetensors"]
    assert rt.torch_device("auto") == torch.device("cpu") and comfy.device_calls == 1
    bar = rt.progress_bar(3)
    assert bar in comfy.bars
    assert set(rt.interrupt_types()) == {FakeInterrupt, KeyboardInterrupt}
    assert isinstance(rt.interrupt_exception("stop"), FakeInterrupt)


def test_model_folder_is_registered_from_scratch(rt, comfy):
    rt.register_model_folder()
    paths, exts = comfy.folder_paths.folder_names_and_paths["pix2pix"]
    assert paths == [os.path.join(comfy.folder_paths.models_dir, "pix2pix")] and exts == {".safetensors"}


# =================================================================== the node functions
def test_chain_pair_train_translate_discriminator_map(N, trained, comfy):
    """Pair -> Train (10 steps) -> Translate -> Discriminator Map, in plain Python, with outputs
    checked against RETURN_TYPES; the ComfyUI hooks report progress."""
    check_outputs(N["Pix2PixPairImages"], (trained.dataset, trained.report))
    assert trained.dataset.in_channels == 3 and trained.dataset.out_channels == 1  # RGB -> gray (auto)
    check_outputs(N["Pix2PixTrain"], (trained.model, trained.curve, trained.train_report), batch=1)
    assert trained.model.step == 10
    with torch.inference_mode():
        out = call(N["Pix2PixTranslate"], model=trained.model, image=trained.a, tile=32, overlap=8)
        check_outputs(N["Pix2PixTranslate"], out, batch=2, size=(40, 48))
        image, mask = out[:2]  # then uncertainty and realism (issue 18)
        assert torch.equal(image[..., 0], image[..., 1]) and torch.equal(image[..., 0], mask)  # gray as RGB
        maps = call(N["Pix2PixDiscriminatorMap"], model=trained.model, image=trained.a, candidate=image)
    check_outputs(N["Pix2PixDiscriminatorMap"], maps, batch=2, size=(40, 48))
    assert comfy.updates > 0 and comfy.device_calls >= 2


def test_continue_training_grows_steps_keeps_state_and_reports_progress(N, trained, comfy):
    """A model on the Train node's model input continues (weights, optimizers, step, history);
    the ComfyUI progress bar advances once per step; the input model is left as it was."""
    with torch.inference_mode():
        model, curve, report = call(N["Pix2PixTrain"], dataset=trained.dataset, model=trained.model, validation_fraction=0.5,
                            **dict(TINY, steps=2))
    check_outputs(N["Pix2PixTrain"], (model, curve, report), batch=1)
    assert "validation at step 12" in report
    assert model.checkpoint.metrics.get("step") == 12  # the held-out pair was evaluated
    bar = comfy.bars[0]
    assert bar.total == 2 and bar.current == 2
    assert model.step == 12 and trained.model.step == 10
    assert model.checkpoint.optimizer_g and model.checkpoint.optimizer_d
    steps = [r["step"] for r in model.checkpoint.history if "G_L1" in r]
    assert steps[:10] == list(range(1, 11)) and steps[-1] == 12
    for t in model.generator.state_dict().values():
        assert t.device.type == "cpu"


def test_translate_any_size_batch_and_channels(N, trained):
    model = trained.model
    odd = images(3, 37, 53, 3, seed=1)
    out = call(N["Pix2PixTranslate"], model=model, image=odd, tile=32, overlap=8)
    check_outputs(N["Pix2PixTranslate"], out, batch=3, size=(37, 53))
    whole = call(N["Pix2PixTranslate"], model=model, image=odd, tile=0, overlap=0)
    check_outputs(N["Pix2PixTranslate"], whole, batch=3, size=(37, 53))
    # a gray IMAGE [B, H, W, 1] and an RGBA IMAGE work too
    check_outputs(N["Pix2PixTranslate"], call(N["Pix2PixTranslate"], model=model, image=odd[..., :1], tile=0),
                  batch=3, size=(37, 53))
    rgb_model = tiny_model(3, 3)
    rgba = images(1, 33, 35, 4)
    check_outputs(N["Pix2PixTranslate"], call(N["Pix2PixTranslate"], model=rgb_model, image=rgba, tile=0),
                  batch=1, size=(33, 35))


def test_gray_conversion_is_exact_for_equal_channels_and_luminance_otherwise(pack):
    cv = sys.modules[pack.__name__ + "._convert"]
    gray = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)
    assert np.array_equal(cv.to_channels(np.repeat(gray, 3, -1), 1, "x", "m"), gray)
    rgb = np.zeros((1, 2, 2, 3), np.float32)
    rgb[..., 1] = 1.0
    np.testing.assert_allclose(cv.to_channels(rgb, 1, "x", "m"), 0.587, atol=1e-4)


def test_discriminator_map_without_candidate_and_with_overlay(N, trained):
    out = call(N["Pix2PixDiscriminatorMap"], model=trained.model, image=trained.a[:1], colormap="magma", overlay=0.5)
    check_outputs(N["Pix2PixDiscriminatorMap"], out, batch=1, size=(40, 48))
    cv = sys.modules[N["Pix2PixDiscriminatorMap"].__module__.rpartition(".")[0] + "._convert"]
    for colormap in cv.COLORMAPS:
        rgb = cv.colormap(np.linspace(0, 1, 11), colormap)
        assert rgb.shape == (11, 3) and rgb.min() >= 0 and rgb.max() <= 1
    diverging = cv.colormap(np.array([0.0, 0.5, 1.0]), "fake_red_real_blue")
    assert diverging[0, 0] > diverging[0, 2] and diverging[2, 2] > diverging[2, 0]  # fake red, real blue
    np.testing.assert_allclose(diverging[1], 1.0, atol=0.05)  # near white at 0.5
    np.testing.assert_array_equal(cv.colormap(np.array([0.3]), "magma"), cv.colormap(np.array([0.3]), "plasma"))
    target = call(N["Pix2PixDiscriminatorMap"], model=trained.model, image=trained.a, candidate=trained.b)
    check_outputs(N["Pix2PixDiscriminatorMap"], target, batch=2, size=(40, 48))


def test_pair_images_with_a_mask_target(N):
    a = images(2, 36, 36, 3)
    mask = (a[..., 0] > 0.5).float()
    dataset, report = call(N["Pix2PixPairImages"], images_a=a, mask_b=mask, channels_a="rgb")
    check_outputs(N["Pix2PixPairImages"], (dataset, report))
    assert dataset.in_channels == 3 and dataset.out_channels == 1 and "2 pair(s)" in report


def test_model_info_node(N, trained):
    (text,) = call(N["Pix2PixModelInfo"], model=trained.model)
    info = json.loads(text)
    assert info["generator"] == "unet_32" and info["steps"] == 10


# ======================================================================== files
def test_saved_model_opens_with_the_engine_and_the_cli(N, trained, comfy, capsys):
    from napari_pix2pix.cli import main
    from napari_pix2pix.model import Pix2PixModel

    (path,) = call(N["Pix2PixSaveModel"], model=trained.model, name="exp/first")
    path = Path(path)
    assert path == Path(comfy.folder_paths.models_dir) / "pix2pix" / "exp" / "first.safetensors"
    loaded = Pix2PixModel.load(path)
    assert loaded.step == 10 and loaded.checkpoint.optimizer_g  # resumable
    for k, v in trained.model.generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[k], v)
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["steps"] == 10 and info["in_channels"] == 3 and info["out_channels"] == 1
    # and back through the Load node (listed in its dropdown)
    assert "exp/first.safetensors" in N["Pix2PixLoadModel"].INPUT_TYPES()["required"]["model_name"][0]
    model, text = call(N["Pix2PixLoadModel"], model_name="exp/first.safetensors")
    check_outputs(N["Pix2PixLoadModel"], (model, text))
    assert N["Pix2PixLoadModel"].IS_CHANGED("exp/first.safetensors") == N["Pix2PixLoadModel"].IS_CHANGED(
        "exp/first.safetensors")


def test_cli_trained_model_loads_in_the_load_node(N, comfy, tmp_path):
    import tifffile

    from napari_pix2pix.cli import main

    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
    img = (rng.random((48, 48)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "A" / "p.tif", img)
    tifffile.imwrite(tmp_path / "B" / "p.tif", (255 - img).astype(np.uint8))
    out = Path(comfy.folder_paths.models_dir) / "pix2pix" / "cli.safetensors"
    assert main(["train", "--source", str(tmp_path / "A"), "--target", str(tmp_path / "B"), "--out", str(out),
                 "--steps", "1", "--generator", "unet_32", "--ngf", "8", "--ndf", "8",
                 "--discriminator-layers", "2", "--crop", "32", "--device", "cpu", "--quiet"]) == 0
    assert "cli.safetensors" in N["Pix2PixLoadModel"].INPUT_TYPES()["required"]["model_name"][0]
    model, _ = call(N["Pix2PixLoadModel"], model_name="cli.safetensors")
    assert model.step == 1
    # uint8-trained: IMAGE values are the data / 255
    image = torch.from_numpy(img.astype(np.float32) / 255)[None, ..., None].repeat(1, 1, 1, 3)
    out_img = call(N["Pix2PixTranslate"], model=model, image=image, tile=0)
    # the model sees exactly what the engine's translate() gives for the uint8 data
    from napari_pix2pix.inference import translate

    expected = translate(model, img, config=TileConfig(tile=0), output_dtype="float32") / 255
    np.testing.assert_allclose(out_img[1][0].numpy(), np.clip(expected, 0, 1), atol=1e-5)
    check_outputs(N["Pix2PixTranslate"], out_img, batch=1, size=(48, 48))


@pytest.mark.parametrize("name", ["../evil", "a/../../b", "/etc/pix", "\\\\server\\share\\x", "C:\\models\\x",
                                  "~/x", "", "   ", "a\x00b", "model.pt"])
def test_save_rejects_names_that_leave_the_model_folder(N, trained, comfy, name):
    with pytest.raises(ConfigError) as err:
        call(N["Pix2PixSaveModel"], model=trained.model, name=name)
    assert "Fix:" in str(err.value)
    assert not list((comfy.tmp).rglob("*.safetensors"))


def test_save_if_exists_policies(N, trained, comfy):
    save = N["Pix2PixSaveModel"]
    (first,) = call(save, model=trained.model, name="m")
    (second,) = call(save, model=trained.model, name="m.safetensors")
    assert Path(second).name == "m_00001.safetensors"
    (third,) = call(save, model=trained.model, name="m", if_exists="overwrite")
    assert third == first
    with pytest.raises(ConfigError, match="already exists"):
        call(save, model=trained.model, name="m", if_exists="error")


def test_load_missing_model_is_a_clear_error(N, comfy):
    with pytest.raises(ModelFileError, match="not found") as err:
        call(N["Pix2PixLoadModel"], model_name="nope.safetensors")
    assert "Fix:" in str(err.value)
    with pytest.raises(ConfigError):
        call(N["Pix2PixLoadModel"], model_name="../../secret.safetensors")


def test_load_damaged_model_is_a_clear_error(N, comfy):
    folder = Path(comfy.folder_paths.models_dir) / "pix2pix"
    folder.mkdir(parents=True)
    (folder / "bad.safetensors").write_bytes(b"\x89PNG not a model")
    with pytest.raises(ModelFileError):
        call(N["Pix2PixLoadModel"], model_name="bad.safetensors")


# ================================================================= pairing folders
def _write_pairs(root: Path, names_a, names_b, size_b=(32, 32)):
    import tifffile

    rng = np.random.default_rng(0)
    for side, names, size in (("A", names_a, (32, 32)), ("B", names_b, size_b)):
        (root / side).mkdir(parents=True, exist_ok=True)
        for n in names:
            tifffile.imwrite(root / side / f"{n}.tif", (rng.random(size) * 255).astype(np.uint8))


def test_pair_folders_inside_the_input_folder(N, comfy):
    _write_pairs(comfy.tmp / "input" / "set", ["x", "y"], ["x", "y"])
    dataset, report = call(N["Pix2PixPairFolders"], folder_a="set/A", folder_b="set/B")
    check_outputs(N["Pix2PixPairFolders"], (dataset, report))
    assert len(dataset) == 2


def test_pair_folders_mismatches_name_the_files(N, comfy):
    root = comfy.tmp / "input" / "bad"
    _write_pairs(root, ["one", "two"], ["one"], size_b=(32, 30))
    with pytest.raises(DatasetError) as err:
        call(N["Pix2PixPairFolders"], folder_a="bad/A", folder_b="bad/B")
    text = str(err.value)
    assert "two" in text and "missing partner" in text and "one" in text and "size mismatch" in text
    assert err.value.report is not None and len(err.value.report.mismatches) == 2


@pytest.mark.parametrize("folder", ["../outside", "/tmp", "set/../../x"])
def test_pair_folders_are_confined_to_the_input_folder(N, comfy, folder):
    with pytest.raises(DatasetError, match="input folder|'\\.\\.'"):
        call(N["Pix2PixPairFolders"], folder_a=folder, folder_b="set/B")


def test_pair_folders_in_plain_python_take_any_path(N, tmp_path):
    _write_pairs(tmp_path, ["x"], ["x"])
    dataset, _ = call(N["Pix2PixPairFolders"], folder_a=str(tmp_path / "A"), folder_b=str(tmp_path / "B"))
    assert len(dataset) == 1


# ====================================================================== bad input
def test_pair_images_bad_inputs(N):
    pair = N["Pix2PixPairImages"]
    with pytest.raises(DatasetError, match="2 A array.*3 B array"):
        call(pair, images_a=images(2), images_b=images(3))
    with pytest.raises(DatasetError) as err:
        call(pair, images_a=images(2, 40, 48), images_b=images(2, 40, 40))
    assert "frame_000" in str(err.value) and "frame_001" in str(err.value)
    with pytest.raises(InputError, match="empty batch"):
        call(pair, images_a=images(0), images_b=images(0))
    with pytest.raises(DatasetError, match="no targets"):
        call(pair, images_a=images(1))


@pytest.mark.parametrize("bad, match", [
    (torch.rand(40, 48, 3), "4-D"),                 # no batch axis
    (torch.rand(1, 3, 40, 48), "channels must be last"),  # channels-first
    (torch.rand(0, 40, 48, 3), "empty batch"),
    (torch.rand(1, 0, 48, 3), "no pixels"),
    (torch.full((1, 8, 8, 3), float("nan")), "NaN"),
    ("not an image", "not an image tensor"),
])
def test_translate_rejects_wrong_images(N, trained, bad, match):
    with pytest.raises(InputError, match=match) as err:
        call(N["Pix2PixTranslate"], model=trained.model, image=bad)
    assert "Fix:" in str(err.value)


def test_channel_mismatch_between_model_and_image(N):
    two = tiny_model(2, 3)
    with pytest.raises(InputError, match="3 channel.*expects 2"):
        call(N["Pix2PixTranslate"], model=two, image=images(1, 32, 32, 3), tile=0)
    rgb = tiny_model(3, 3)
    with pytest.raises(InputError, match="2 channel.*expects 3"):
        call(N["Pix2PixTranslate"], model=rgb, image=images(1, 32, 32, 2), tile=0)
    with pytest.raises(InputError, match="2 channel"):
        call(N["Pix2PixDiscriminatorMap"], model=rgb, image=images(1, 40, 40, 2))


def test_train_rejects_a_dataset_that_does_not_fit_the_model(N, trained):
    rgb = call(N["Pix2PixPairImages"], images_a=images(1, 36, 36), images_b=images(1, 36, 36, seed=3),
               channels_a="rgb", channels_b="rgb")[0]
    with pytest.raises(DatasetError, match="channels"):
        call(N["Pix2PixTrain"], dataset=rgb, model=trained.model, **dict(TINY, steps=1))
    with pytest.raises(Pix2PixError):
        call(N["Pix2PixTrain"], dataset="nope", **TINY)


def test_discriminator_map_candidate_must_match(N, trained):
    with pytest.raises(InputError, match="same size|input's size"):
        call(N["Pix2PixDiscriminatorMap"], model=trained.model, image=trained.a, candidate=images(2, 40, 40))
    with pytest.raises(InputError, match="candidate batch"):
        call(N["Pix2PixDiscriminatorMap"], model=trained.model, image=trained.a, candidate=images(3, 40, 48))


def test_cancel_during_training_stops_within_a_step_and_keeps_the_model(N, trained, comfy):
    from napari_pix2pix.model import Pix2PixModel

    comfy.interrupt_after = 2  # the user presses Cancel while step 2 runs
    train = N["Pix2PixTrain"]
    with torch.inference_mode(), pytest.raises(FakeInterrupt):
        call(train, dataset=trained.dataset, autosave="runs/last", unique_id="7", **dict(TINY, steps=50))
    kept = Path(comfy.folder_paths.models_dir) / "pix2pix" / "runs" / "last.safetensors"
    saved = Pix2PixModel.load(kept)
    assert saved.step == 2 and not saved.checkpoint.optimizer_g  # weights and config only by default
    assert train.last_interrupted is not None and train.last_interrupted.step == 2
    assert train.last_interrupted.checkpoint.optimizer_g  # the in-memory model keeps it
    assert any(node == "7" and str(kept) in text for node, text in comfy.texts)  # shown on the node
    comfy.interrupt_after, comfy.updates = 1, 0
    with torch.inference_mode(), pytest.raises(FakeInterrupt):
        call(train, dataset=trained.dataset, autosave="runs/full", save_optimizer=True, **dict(TINY, steps=50))
    full = Pix2PixModel.load(kept.with_name("full.safetensors"))
    assert full.step == 1 and full.checkpoint.optimizer_g and full.checkpoint.optimizer_d



def test_cancel_before_the_first_step_saves_nothing(N, trained, comfy):
    comfy.interrupt = True  # pressed while the graph ran up to the Train node
    with torch.inference_mode(), pytest.raises(FakeInterrupt):
        call(N["Pix2PixTrain"], dataset=trained.dataset, autosave="runs/early", **dict(TINY, steps=5))
    assert not (Path(comfy.folder_paths.models_dir) / "pix2pix" / "runs" / "early.safetensors").exists()


def test_cancel_during_a_validation_stops_after_it(N, trained, comfy, monkeypatch):
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.training import Trainer

    validate = Trainer.validate

    def pressed_during(self):
        comfy.interrupt = True
        return validate(self)

    monkeypatch.setattr(Trainer, "validate", pressed_during)
    with torch.inference_mode(), pytest.raises(FakeInterrupt):
        call(N["Pix2PixTrain"], dataset=trained.dataset, autosave="runs/val", validation_fraction=0.5,
             validate_every=2, **dict(TINY, steps=50))
    saved = Pix2PixModel.load(Path(comfy.folder_paths.models_dir) / "pix2pix" / "runs" / "val.safetensors")
    assert saved.step == 2

def test_train_report_names_the_saved_file_and_warns_about_a_large_crop(N, trained, comfy):
    old = os.umask(0o022)
    try:
        out = getattr(N["Pix2PixTrain"](), "train")(**{**defaults(N["Pix2PixTrain"]), "dataset": trained.dataset,
                                                       **dict(TINY, steps=2, crop=64), "autosave": "r/x",
                                                       "unique_id": "3"})
    finally:
        os.umask(old)
    report = out["result"][2]
    assert out["ui"]["text"] == [report]
    path = Path(comfy.folder_paths.models_dir) / "pix2pix" / "r" / "x.safetensors"
    assert str(path) in report and "crop 64 is larger than the smallest training image (48x" in report
    assert "estimated duration" in report
    assert (path.stat().st_mode & 0o777) == 0o644  # the umask, not owner-only
    assert ("3", report) in comfy.texts  # also drawn on the node


def test_training_leaves_the_global_random_state_as_it_was(N, trained):
    import random

    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(9)
    expected = (torch.rand(3), np.random.rand(2), random.random())
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(9)
    call(N["Pix2PixTrain"], dataset=trained.dataset, autosave="", **dict(TINY, steps=1, seed=77))
    got = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_auto_device_keeps_a_cuda_index(rt):
    assert rt.engine_device_name(torch.device("cuda", 1)) == "cuda:1"
    assert rt.engine_device_name(torch.device("cpu")) == "cpu"


def test_cancel_during_translation_raises_comfyuis_interrupt(N, trained, comfy):
    comfy.interrupt = True
    with pytest.raises(FakeInterrupt):
        call(N["Pix2PixTranslate"], model=trained.model, image=trained.a, tile=32, overlap=8)


def test_errors_do_not_leave_the_model_on_another_device(N, trained):
    before = trained.model.device
    with pytest.raises(InputError):
        call(N["Pix2PixTranslate"], model=trained.model, image=torch.rand(1, 2, 8, 8))
    assert trained.model.device == before


# ====================================================================== workflows
def _input_spec(N, class_type):
    if class_type in BUILTINS:
        return dict(BUILTINS[class_type][0]), BUILTINS[class_type][1], set(BUILTINS[class_type][0])
    spec = N[class_type].INPUT_TYPES()
    inputs = {}
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            inputs[name] = entry
    return inputs, N[class_type].RETURN_TYPES, set(spec["required"])


def _type_of(entry):
    if isinstance(entry, str):
        return entry
    return "COMBO" if isinstance(entry[0], list) else entry[0]


@pytest.mark.parametrize("workflow", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_example_workflows_are_valid_api_graphs(N, workflow):
    graph = json.loads((EXAMPLES / workflow).read_text())
    assert graph and all(isinstance(k, str) for k in graph)
    used = {node["class_type"] for node in graph.values()}
    assert used <= set(N) | set(BUILTINS), used - set(N) - set(BUILTINS)
    assert used & set(N)
    for node_id, node in graph.items():
        inputs, _, required = _input_spec(N, node["class_type"])
        assert required <= set(node["inputs"]), (node_id, required - set(node["inputs"]))
        for name, value in node["inputs"].items():
            assert name in inputs, (node_id, name)
            expected = _type_of(inputs[name])
            if isinstance(value, list):  # a link: [source id, output index]
                src_id, index = value
                assert src_id in graph, (node_id, name)
                _, returns, _ = _input_spec(N, graph[src_id]["class_type"])
                assert index < len(returns) and returns[index] == expected, (node_id, name, returns, expected)
            elif node["class_type"] in N:
                entry = inputs[name]
                if isinstance(entry[0], list) and name != "model_name":  # file lists depend on the disk
                    assert value in entry[0], (node_id, name, value)
                elif entry[0] in ("INT", "FLOAT"):
                    assert entry[1]["min"] <= value <= entry[1]["max"], (node_id, name)
                    assert isinstance(value, int if entry[0] == "INT" else (int, float))
                elif entry[0] in ("STRING", "BOOLEAN"):
                    assert isinstance(value, str if entry[0] == "STRING" else bool), (node_id, name)


def test_example_workflows_cover_translate_and_training():
    kinds = {p.name: {n["class_type"] for n in json.loads(p.read_text()).values()} for p in EXAMPLES.glob("*.json")}
    assert any({"LoadImage", "Pix2PixLoadModel", "Pix2PixTranslate", "SaveImage"} <= k for k in kinds.values())
    assert any({"Pix2PixPairImages", "Pix2PixTrain", "Pix2PixSaveModel"} <= k for k in kinds.values())


def test_preset_fills_the_inputs_left_at_their_defaults(N, trained):
    from napari_pix2pix.presets import PRESETS

    spec = N["Pix2PixTrain"].INPUT_TYPES()["required"]["preset"]
    assert spec[0][:2] == ["auto", "none"] and set(PRESETS) <= set(spec[0]) and spec[1]["default"] == "auto"
    inputs = dict(TINY, steps=1, preset="quick-cpu")
    del inputs["ndf"]  # left at the node's default: the preset fills it
    model, _, report = call(N["Pix2PixTrain"], dataset=trained.dataset, autosave="", **inputs)
    assert model.config.ndf == PRESETS["quick-cpu"].overrides["ndf"] != N["Pix2PixTrain"].INPUT_TYPES()[
        "required"]["ndf"][1]["default"]
    assert model.config.generator == "unet_32"  # changed by the user: kept
    assert "preset quick-cpu:" in report and "ndf" in report and "kept your generator unet_32" in report


def test_train_report_warns_once_when_the_output_collapses(N, trained, comfy, monkeypatch):
    """Issue 20: a flat validation output is said (once) in the node's report and on the node."""
    from napari_pix2pix import metrics

    monkeypatch.setattr(metrics, "collapse_warning", lambda m, fraction=0.01: "Output is flat. Fix: try this.")
    out = getattr(N["Pix2PixTrain"](), "train")(**{**defaults(N["Pix2PixTrain"]), "dataset": trained.dataset,
                                                   **dict(TINY, steps=4), "validation_fraction": 0.25,
                                                   "validate_every": 2, "autosave": "", "unique_id": "5"})
    report = out["result"][2]
    assert report.count("warning: Output is flat. Fix: try this.") == 1
    assert ("5", "Output is flat. Fix: try this.") in comfy.texts


# ========================================================================== loss curve
def _history(scale: float, validation: bool = False) -> list:
    rng = np.random.default_rng(0)
    rows = []
    for step in range(1, 41):
        rows.append({"step": step, "G_L1": scale * (10 + 30 * np.exp(-step / 10)), "G_GAN": 0.7 + 0.1 * rng.random(),
                     "D_real": 0.6 + 0.1 * rng.random(), "D_fake": 0.5 + 0.1 * rng.random(), "lr": 2e-4})
        if validation and step % 10 == 0:
            rows.append({"step": step, "val_PSNR": 12 + step / 4, "val_SSIM": 0.2 + step / 100})
    return rows


def _has_colour(image: np.ndarray, hex_colour: str, tol: float = 0.03) -> bool:
    rgb = np.asarray([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.float32) / 255
    return bool((np.abs(image - rgb).max(-1) < tol).sum() > 20)


def test_loss_curve_is_a_matplotlib_plot_of_the_history(pack):
    """The curve IMAGE keeps its contract (float32 [H, W, 3] in 0..1, default 384 x 640), draws
    each named loss in its colour, and changes with the history (validation adds its panel)."""
    cv = sys.modules[pack.__name__ + "._convert"]
    plain = cv.loss_curve(_history(1.0))
    assert plain.shape == (*cv.CURVE_SIZE, 3) == (384, 640, 3) and plain.dtype == np.float32
    assert plain.min() >= 0 and plain.max() <= 1
    assert (plain < 0.9).any(-1).mean() > 0.01  # not blank
    for _, colour in cv._LOSSES.values():
        assert _has_colour(plain, colour), colour
    assert not any(_has_colour(plain, colour) for _, colour in cv._VALIDATION.values())
    other = cv.loss_curve(_history(1.0)[:20])  # a shorter run: the x axis and the curves move
    assert not np.array_equal(plain, other)
    validated = cv.loss_curve(_history(1.0, validation=True))
    assert all(_has_colour(validated, colour) for _, colour in cv._VALIDATION.values())
    empty = cv.loss_curve([])
    assert empty.shape == (384, 640, 3) and (empty < 0.9).any(-1).mean() > 0.001  # axes and a note
    assert cv.loss_curve(_history(1.0)[:1], height=200, width=333).shape == (200, 333, 3)


def test_train_node_curve_output_is_drawn(trained):
    curve = trained.curve.numpy()
    assert curve.shape == (1, 384, 640, 3) and (curve < 0.9).any(-1).mean() > 0.01


def test_train_node_reports_a_threads_change(N, monkeypatch):
    """threads=auto switching its thread count mid-run (a ThreadsEvent) is said in the node's report."""
    from napari_pix2pix.training import ThreadsEvent, Trainer

    events = Trainer.events

    def with_a_switch(self, *args, **kwargs):
        yield ThreadsEvent(0, 2, 1, "threads 2 -> 1 (auto: test load)")
        yield from events(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "events", with_a_switch)
    a = images(1, 32, 32, 3)
    dataset, _ = call(N["Pix2PixPairImages"], images_a=a, images_b=a * 0.5)
    *_, report = call(N["Pix2PixTrain"], dataset=dataset, **dict(TINY, steps=1))
    assert "threads 2 -> 1 (auto: test load)" in report
