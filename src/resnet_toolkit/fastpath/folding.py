"""BatchNorm folding: inference BatchNorms merged into the convolutions before them."""

from __future__ import annotations

from torch import nn


def _fold_traced(root: nn.Module) -> int:
    """Fold the BatchNorms of `root` (FX-traceable) that directly follow a Conv2d with no other user."""
    import torch.fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    graph = torch.fx.symbolic_trace(root).graph
    modules = dict(root.named_modules())
    folded = 0
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        # a BatchNorm held by the traced root itself is kept: wrappers may read it (e.g. for the model's dtype)
        if not isinstance(bn, nn.BatchNorm2d) or "." not in node.target or not node.args:
            continue
        prev = node.args[0]
        conv = modules.get(prev.target) if isinstance(prev, torch.fx.Node) and prev.op == "call_module" else None
        if not isinstance(conv, nn.Conv2d) or len(prev.users) != 1 or not bn.track_running_stats:
            continue
        fused = fuse_conv_bn_eval(conv, bn)
        conv.weight, conv.bias = fused.weight, fused.bias
        parent, _, name = node.target.rpartition(".")
        setattr(modules[parent], name, nn.Identity())
        folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> int:
    """Fold inference BatchNorms into the convolutions before them, in place; returns how many were folded.

    Works on every FX-traceable sub-module (a timm ResNet inside our wrapper); others are left as they are.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode.")
    try:
        return _fold_traced(model)
    except Exception:  # noqa: BLE001 - not traceable as a whole: try its children
        return sum(fold_batchnorm(child) for child in model.children())
