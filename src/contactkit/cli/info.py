"""``contactkit info [papers]``: versions, devices, bundled objects, hand models, methods; or the papers cited."""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Paper:
    """A paper contactkit implements, as help texts and docs cite it ("paper 000")."""

    number: str
    authors: str
    title: str
    venue: str
    methods: str


#: The five papers behind contactkit, by the number help texts and docs use.
PAPERS: tuple[Paper, ...] = (
    Paper("000", "Grady et al.", "ContactOpt: Optimizing Contact to Improve Grasps", "CVPR 2021",
          "refine --method contactopt, DeepContact, DiffContact, the contactopt perturbation protocol"),
    Paper("001", "Hasson et al.", "Learning joint reconstruction of hands and manipulated objects (ObMan)",
          "CVPR 2019", "refine --method obman, synth (grasp synthesis), penetration and intersection metrics"),
    Paper("002", "Morales, Taheri & Lacey",
          "A Versatile and Differentiable Hand-Object Interaction Representation (CHOIR / JointDiffusion)",
          "WACV 2025", "refine --method choir, the CHOIR field"),
    Paper("003", "Zhuang & Mu",
          "Joint Hand-Object Pose Estimation with Differentiably-Learned Physical Contact Point Analysis",
          "ICMR 2021", "refine --method affinity (physical affinity loss)"),
    Paper("004", "Yang et al.", "CPF: Learning a Contact Potential Field to Model the Hand-Object Interaction",
          "ICCV 2021", "refine --method cpf / cpf_object, PiCR, anchors, subregions, A-MANO anatomy"),
)


def format_papers() -> str:
    """The papers table: number, authors, title, venue and what contactkit takes from each."""
    lines = ["Papers cited as 'paper NNN' in help texts and docs:"]
    for p in PAPERS:
        lines.append(f"  {p.number}  {p.authors}, \"{p.title}\", {p.venue}")
        lines.append(f"       used by: {p.methods}")
    return "\n".join(lines)


def collect_info() -> dict[str, Any]:
    """What this installation provides, as a JSON-serialisable dict.

    Keys: ``contactkit``, ``python``, ``platform``, ``torch`` (version, CUDA availability and device names,
    CPU threads), ``objects`` (bundled object names), ``hands`` (per hand model: available, vertices, faces,
    or why it is unavailable), ``refine_methods``, ``cache_dir``.
    """
    import torch

    from contactkit import __version__
    from contactkit.hands import load_hand
    from contactkit.objects import list_bundled_objects
    from contactkit.objects.cache import cache_root
    from contactkit.refine.methods import list_methods

    cuda = torch.cuda.is_available()
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                         for i in range(torch.cuda.device_count())]
    hands: dict[str, Any] = {}
    for name in ("openhand", "mano"):
        try:
            hand = load_hand(name)
        except Exception as err:  # noqa: BLE001 - report why a model is unavailable (e.g. MANO files absent)
            hands[name] = {"available": False, "reason": f"{type(err).__name__}: {err}"}
        else:
            hands[name] = {"available": True, "num_verts": int(hand.num_verts),
                           "num_faces": int(hand.faces.shape[0]), "num_betas": int(hand.num_betas)}
    return {
        "contactkit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": {"version": torch.__version__, "cuda_available": cuda, "devices": devices,
                  "cpu_threads": torch.get_num_threads()},
        "objects": list(list_bundled_objects()),
        "hands": hands,
        "refine_methods": list(list_methods()),
        "cache_dir": str(cache_root()),
    }


def format_info(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`collect_info`'s dict."""
    t = info["torch"]
    lines = [
        f"contactkit {info['contactkit']} (Python {info['python']}, {info['platform']})",
        f"torch {t['version']}; CUDA available: {'yes' if t['cuda_available'] else 'no'}; "
        f"CPU threads: {t['cpu_threads']}",
        "devices: " + ", ".join(t["devices"]),
        "bundled objects: " + (", ".join(info["objects"]) or "(none)"),
        "hand models:",
    ]
    for name, h in info["hands"].items():
        if h["available"]:
            lines.append(f"  {name}: {h['num_verts']} vertices, {h['num_faces']} faces, "
                         f"{h['num_betas']} betas")
        else:
            lines.append(f"  {name}: unavailable ({h['reason']})")
    lines.append("refinement methods: " + ", ".join(info["refine_methods"]))
    lines.append(f"cache: {info['cache_dir']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.topic == "papers":
        print(json.dumps([asdict(p) for p in PAPERS], indent=2) if args.json else format_papers())
        return 0
    info = collect_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show versions, devices, bundled objects, hand models and methods",
                              description="Show what this contactkit installation provides; `contactkit info "
                                          "papers` lists the papers help texts cite as 'paper 000' ... '004'.")
    p.add_argument("topic", nargs="?", choices=["papers"], default=None,
                   help="'papers': the papers behind the methods, by author and title (default: the installation)")
    p.add_argument("--json", action="store_true", help="print the information as JSON")
    p.set_defaults(func=run)
