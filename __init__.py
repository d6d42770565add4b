"""ComfyUI entry point for a clone of this repository in ``ComfyUI/custom_nodes/``.

ComfyUI imports ``custom_nodes/<folder>/__init__.py`` as a package named after the folder; this
file re-exports the node pack in ``nodes/``. pytest also imports this file while collecting a
checkout (as a package named after the folder when that is an identifier, else as a plain module
``__init__``, where relative imports are impossible), hence the guard.
"""

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:  # imported as a plain module (not by ComfyUI): nothing to register
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
