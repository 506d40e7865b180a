"""Learned contact estimation: DeepContact (paper 000) and geometric PiCR (paper 004).

Modules: ``pointnet2`` (plain-PyTorch PointNet++ ops), ``features`` (29 per-point features in the wrist frame),
``networks``, ``losses``, ``data`` (inputs on noisy grasps, targets on their ground truth), ``train`` (seeded,
resumable training), ``checkpoint`` (versioned state dicts, ``weights_only`` loading) and ``estimators``
(:func:`~contactkit.learn.estimators.load_estimator`, the refiner's ``ContactEstimator`` implementations).
Shipped OpenHand weights live in ``learn/weights/`` (see ``docs/model_card.md``).
"""
