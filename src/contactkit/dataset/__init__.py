"""contactkit.dataset: rendered, sharded, versioned training sets of synthesised grasps (``docs/dataset.md``).

``build_dataset`` writes one (resumable, atomic) shard per object — grasps in contactkit's grasp format, PNG
images, npz arrays, JSON metadata — serially, in worker processes or on Ray; ``dataset_info`` summarises a
folder; ``RenderedDataset`` is the PyTorch ``Dataset`` over one split's views.
"""

from contactkit.dataset.build import build_dataset, dataset_info, read_manifest
from contactkit.dataset.torch_dataset import RenderedDataset

__all__ = ["RenderedDataset", "build_dataset", "dataset_info", "read_manifest"]
