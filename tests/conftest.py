"""Shared fixtures: the real anchor files beside the checkout, and the repo root."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# VQ3D_ANCHORS: elsewhere, or a missing path to check that the suite skips cleanly without them
ANCHORS = Path(os.environ.get("VQ3D_ANCHORS") or REPO.parent / "shared" / "anchors")


@pytest.fixture
def anchors() -> Path:
    """../shared/anchors (real Ego4D/EgoLoc files); tests using it skip where it is absent."""
    if not ANCHORS.is_dir():
        pytest.skip(f"anchor files not found at {ANCHORS}")
    return ANCHORS


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
