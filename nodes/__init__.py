"""napari-pix2pix nodes for ComfyUI: load, pair, train, translate, discriminator maps, save.

ComfyUI loads this folder from its path (``custom_nodes/<name>/__init__.py``), so everything
here is imported relatively: ComfyUI has its own top-level module called ``nodes``, and this
package must never be imported under that name. The engine comes from the installed
``napari_pix2pix`` package (or, in a repository checkout, the copy next to this folder).
"""

from ._engine import ensure_engine

ensure_engine()

from . import _runtime  # noqa: E402
from .pix2pix_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402
from . import export_node  # noqa: E402

NODE_CLASS_MAPPINGS = {**NODE_CLASS_MAPPINGS, **export_node.NODE_CLASS_MAPPINGS}
NODE_DISPLAY_NAME_MAPPINGS = {**NODE_DISPLAY_NAME_MAPPINGS, **export_node.NODE_DISPLAY_NAME_MAPPINGS}

_runtime.register_model_folder()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
