"""Detection backends behind one interface (see base.Backend); created from the detect config."""

from __future__ import annotations


def make_backend(conf: dict):
    name = conf.get("backend", "features")
    if name == "features":
        from .features import FeaturesBackend
        return FeaturesBackend(conf.get("features"))
    if name == "siamrcnn":
        from .siamrcnn import SiamRCNNBackend
        return SiamRCNNBackend(conf.get("siamrcnn"))
    if name == "precomputed":
        from .precomputed import PrecomputedBackend
        return PrecomputedBackend(conf.get("precomputed"))
    raise ValueError(f"unknown detect backend {name!r} (expected features, siamrcnn or precomputed)")
