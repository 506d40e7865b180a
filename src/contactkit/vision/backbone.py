"""Image backbones: a compact ResNet in plain PyTorch, and a seam for torchvision's where it is installed.

A backbone maps images ``(B, 3, H, W)`` (float, ImageNet-normalised) to a feature map ``(B, C, H / s, W / s)``
and says its ``out_channels`` and ``stride``; heads (:mod:`contactkit.vision.heads`) and other networks (ObMan's
encoder, CPF's HoNet) consume only that. :func:`build_backbone` builds one from a JSON-able config:

- ``{"name": "resnet", "width": 32, "blocks": [2, 2, 2, 2]}``: the compact ResNet (He et al. 2016; basic
  blocks; ``width`` channels in the first stage, doubling per stage; ``blocks`` per stage; stride 32 with four
  stages, 16 with three...). ResNet-18 is ``width=64, blocks=[2, 2, 2, 2]``, ResNet-34 ``[3, 4, 6, 3]``.
- ``{"name": "torchvision", "arch": "resnet50"}``: a torchvision ResNet trunk (no pretrained weights are
  downloaded; load them yourself). Raises a clear error where torchvision is not installed.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from contactkit.errors import ContactkitError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Backbone", "CompactResNet", "build_backbone", "normalize_images"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class Backbone(Protocol):
    """What heads need from a backbone."""

    out_channels: int
    stride: int

    def __call__(self, images: Tensor) -> Tensor: ...


def normalize_images(rgb: Tensor) -> Tensor:
    """uint8 or [0, 1] float images (B, H, W, 3) -> ImageNet-normalised float (B, 3, H, W)."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ContactkitError(f"rgb must have shape (B, H, W, 3), got {tuple(rgb.shape)}")
    x = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)
    std = torch.tensor(IMAGENET_STD, device=x.device)
    return ((x - mean) / std).permute(0, 3, 1, 2).contiguous()


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class CompactResNet(nn.Module):
    """ResNet with basic blocks: stem (3x3 conv stride 2 + max-pool), then one stage per entry of ``blocks``.

    Args:
        width: channels of the first stage (doubled at every later stage).
        blocks: basic blocks per stage (the first stage keeps the resolution, later ones halve it).
    """

    def __init__(self, width: int = 32, blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        if width < 1 or not blocks or min(blocks) < 1:
            raise ContactkitError(f"width must be >= 1 and blocks a non-empty list of positive counts, got "
                                  f"{width}, {list(blocks)}")
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2 ** i
            layers = [_BasicBlock(cin, cout, 1 if i == 0 else 2)]
            layers += [_BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_channels = cin
        self.stride = 4 * 2 ** (len(blocks) - 1)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))."""
        return self.stages(self.stem(images))


class _TorchvisionTrunk(nn.Module):
    def __init__(self, arch: str) -> None:
        super().__init__()
        try:
            import torchvision
        except ImportError:
            raise ContactkitError("backbone 'torchvision' needs the torchvision package, which is not installed; "
                                  "use {'name': 'resnet', ...} (the compact plain-PyTorch ResNet)") from None
        model = getattr(torchvision.models, arch, None)
        if model is None:
            raise ContactkitError(f"torchvision has no model {arch!r}")
        net = model(weights=None)
        self.trunk = nn.Sequential(*(list(net.children())[:-2]))
        self.out_channels = int(net.fc.in_features)
        self.stride = 32

    def forward(self, images: Tensor) -> Tensor:
        return self.trunk(images)


def build_backbone(config: dict[str, Any]) -> nn.Module:
    """A backbone (module docstring) from its JSON-able config; unknown names or keys raise."""
    cfg = dict(config)
    name = cfg.pop("name", None)
    if name == "resnet":
        unknown = set(cfg) - {"width", "blocks"}
        if unknown:
            raise ContactkitError(f"unknown resnet backbone settings {sorted(unknown)}; known: blocks, width")
        return CompactResNet(int(cfg.get("width", 32)), tuple(int(b) for b in cfg.get("blocks", (2, 2, 2, 2))))
    if name == "torchvision":
        unknown = set(cfg) - {"arch"}
        if unknown:
            raise ContactkitError(f"unknown torchvision backbone settings {sorted(unknown)}; known: arch")
        return _TorchvisionTrunk(str(cfg.get("arch", "resnet50")))
    raise ContactkitError(f"backbone name must be 'resnet' or 'torchvision', got {name!r}")
