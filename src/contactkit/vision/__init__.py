"""contactkit.vision: from images to hand and object keypoints (paper 003).

- :mod:`~contactkit.vision.keypoints`: the 29 keypoints (21 hand + 8 box corners), their graphs, the object box;
- :mod:`~contactkit.vision.graph`: graph convolutions; :mod:`~contactkit.vision.lifter`: the context-aware graph
  network lifting 2D keypoints to 3D;
- :mod:`~contactkit.vision.backbone`, :mod:`~contactkit.vision.heads`: image backbones and 2D keypoint heads;
- :mod:`~contactkit.vision.camera`, :mod:`~contactkit.vision.data`, :mod:`~contactkit.vision.losses`,
  :mod:`~contactkit.vision.metrics`, :mod:`~contactkit.vision.train`: cameras, data, objective, metrics, training.
"""
