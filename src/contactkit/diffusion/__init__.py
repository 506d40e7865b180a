"""JointDiffusion (paper 002, Sec. 3.2): a conditional diffusion model over CHOIR fields.

- :mod:`~contactkit.diffusion.model`: the denoiser (3D U-Net + contact branch + context encoder);
- :mod:`~contactkit.diffusion.representation`: CHOIR fields <-> normalised network tensors, training examples;
- :mod:`~contactkit.diffusion.schedule`: noise schedules and samplers (``diffusers`` schedulers);
- :mod:`~contactkit.diffusion.checkpoint`: weights-only checkpoints with their config;
- :mod:`~contactkit.diffusion.train`: seeded, resumable, EMA, DDP training;
- :mod:`~contactkit.diffusion.predictor`: learned CHOIR targets for ``refine --method choir``;
- :mod:`~contactkit.diffusion.synthesis`: grasp synthesis from the object-conditioned model.
"""
