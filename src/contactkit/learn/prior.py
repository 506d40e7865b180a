"""Fixed contact priors of DeepContact: the training set's bin distributions, as log-probabilities.

DeepContact's bin logits are ``residual + prior``: for each hand vertex the prior is the log of the training set's
distribution of that vertex's contact bin (the per-vertex mean contact map, binned), for object points it is the
log of the training set's marginal bin distribution (objects differ between grasps, so there is no per-point
prior). A network whose residual is zero predicts exactly the prior, i.e. the training set's mean map; training
learns object- and pose-specific corrections on top of it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from contactkit.errors import ContactkitError
from contactkit.learn.losses import contact_to_bins

#: Counts added to every bin before normalising (a vertex never seen in contact keeps a finite log-probability).
PRIOR_PSEUDOCOUNT = 0.5


def contact_bin_prior(
    contact: Tensor, n_hand: int, n_bins: int, *, pseudocount: float = PRIOR_PSEUDOCOUNT
) -> tuple[Tensor, Tensor]:
    """Log-probability priors of the contact bins from training targets.

    Args:
        contact: (N, V + P) float target contact in [0, 1] of N training grasps, hand vertices first.
        n_hand: V, the number of hand vertices (the first columns).
        n_bins: number of contact bins.
        pseudocount: added to every bin count (> 0).

    Returns:
        ``(hand (V, n_bins), object (n_bins,))`` float32 log-probabilities: per hand vertex, the distribution of
        its bin over the N grasps; for object points, the distribution over all N * P object points.
    """
    if contact.ndim != 2 or contact.shape[0] < 1 or not 0 < n_hand < contact.shape[1]:
        raise ContactkitError(
            f"contact must have shape (N >= 1, V + P) with V = n_hand = {n_hand} < V + P, got {tuple(contact.shape)}"
        )
    if n_bins < 2 or pseudocount <= 0:
        raise ContactkitError(f"n_bins must be >= 2 and pseudocount > 0, got {n_bins} and {pseudocount}")
    bins = contact_to_bins(contact, n_bins)
    one_hot = torch.nn.functional.one_hot(bins, n_bins).to(torch.float64)  # (N, V + P, n_bins)
    hand_counts = one_hot[:, :n_hand].sum(0) + pseudocount
    obj_counts = one_hot[:, n_hand:].sum((0, 1)) + pseudocount
    hand = hand_counts.log() - hand_counts.sum(-1, keepdim=True).log()
    obj = obj_counts.log() - obj_counts.sum().log()
    return hand.float(), obj.float()



def pose_axes(hand_xyz: Tensor, n_axes: int) -> tuple[Tensor, Tensor]:
    """Mean and principal axes of training hands' postures (for DeepContact's ``prior_pose``).

    Args:
        hand_xyz: (N, V, 3) hand vertices of N training grasps in the network's wrist frame (normalised units).
        n_axes: K, the number of principal axes kept (1 <= K <= min(N, 3V)).

    Returns:
        ``(mean (3V,), axes (3V, K))`` float32: the mean flattened posture and its K leading principal directions
        (orthonormal columns, by decreasing variance).
    """
    if hand_xyz.ndim != 3 or hand_xyz.shape[-1] != 3:
        raise ContactkitError(f"hand_xyz must have shape (N, V, 3), got {tuple(hand_xyz.shape)}")
    flat = hand_xyz.reshape(hand_xyz.shape[0], -1).to(torch.float64)
    if not 1 <= n_axes <= min(flat.shape):
        raise ContactkitError(f"n_axes must be in [1, {min(flat.shape)}], got {n_axes}")
    mean = flat.mean(0)
    _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    return mean.float(), vh[:n_axes].T.contiguous().float()
