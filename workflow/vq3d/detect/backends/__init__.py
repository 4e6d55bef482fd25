"""Detection backends behind one interface (see base.Backend); created from the detect config."""

from __future__ import annotations


def make_backend(conf: dict):
    name = conf["backend"]
    if name == "features":
        from .features import FeaturesBackend
        return FeaturesBackend(conf["features"])
    if name == "siamrcnn":
        from .siamrcnn import SiamRCNNBackend
        return SiamRCNNBackend(conf["siamrcnn"])
    if name == "precomputed":
        from .precomputed import PrecomputedBackend
        return PrecomputedBackend(conf["precomputed"])
    raise ValueError(f"unknown detect backend {name!r} (expected features, siamrcnn or precomputed)")
