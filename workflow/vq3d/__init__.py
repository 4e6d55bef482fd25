"""vq3d: Ego4D Visual Queries 3D localization (VQ3D) as a resumable workflow."""

__version__ = "0.1.0"
