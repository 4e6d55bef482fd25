"""Stage 5: lift posed detection peaks to 3D, aggregate per query (`main`), and write the
challenge submission (`vq3d.predict.submission`)."""

from .stage import add_arguments, main, run

__all__ = ["main", "add_arguments", "run"]
