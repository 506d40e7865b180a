"""contactkit.synth: grasp synthesis (ObMan-style), perturbation protocols, contact zones from grasp statistics,
the grasp-quality measure used for ranking, and the standard synthetic benchmark set.

Submodules are imported lazily by their users (synthesis pulls in the metrics and MuJoCo); import from them:
``contactkit.synth.synthesis.synthesize``, ``contactkit.synth.perturb.perturb``,
``contactkit.synth.zones.derive_contact_zones``, ``contactkit.synth.quality.ferrari_canny_epsilon``,
``contactkit.synth.benchmark.build_benchmark_set``.
"""
