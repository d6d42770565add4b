"""What runs the network for :class:`~napari_pix2pix.predict.Predictor`.

A backend has ``name``, ``in_channels``, ``out_channels``, ``size_multiple``,
``normalizations(dtype) -> (norm_a, norm_b)``, ``is_out_of_memory(exc)`` and a context manager
``session(mode, seed, precision)`` that yields ``run(batch) -> batch``: numpy float32
``[B, C_in, t, t]`` in the model's range to ``[B, C_out, t, t]``. For the task adapters and
the stochastic modes it also has ``task``, ``data`` (the model file's data record),
``torch_device`` (where kornia runs for colorize), ``sampling_session(precision)`` yielding
``(run, seed_items)`` (seeded dropout passes) and ``realism(x, y, stack)`` (the discriminator's
map); the onnxruntime backend refuses the last two with a message.

* :class:`~napari_pix2pix.backends.torch.TorchBackend` (default): a loaded
  :class:`~napari_pix2pix.model.Pix2PixModel`; eval or the paper's train mode, autocast.
* :class:`~napari_pix2pix.backends.onnxruntime.OnnxRuntimeBackend`: an ``.onnx`` file written by
  ``export --format onnx``; eval mode, fp32; torch is never imported.

Importing this package imports neither torch nor onnxruntime.
"""

from __future__ import annotations
