"""Score the published val prediction files against the real VQ3D val annotations and print the
table (and the time each evaluation takes). Usage: python benchmarks/evaluate_anchors.py [ANCHORS]"""

import sys
import time
from pathlib import Path

from vq3d.evaluate import evaluate, format_table

ANCHORS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "anchors"
GT = ANCHORS / "egoloc/data/metadata/vq3d_val.json"
FILES = [
    "egoloc/data/vq3d_results/egoloc_val_mf_weighted2d_val.json",
    "egoloc/data/vq3d_results/baseline_val_last_val.json",
    "ego4d/VQ3D/data/vq3d_results/siam_rcnn_residual_kys_val.json",
]

if __name__ == "__main__":
    for i, rel in enumerate(FILES):
        t0 = time.perf_counter()
        m = evaluate(GT, ANCHORS / rel)
        dt = time.perf_counter() - t0
        head, line = format_table(m, Path(rel).name).splitlines()[:2]
        print("\n".join([head, line] if i == 0 else [line]) +
              f"   ({m['family']}: angle = annotator {m['angle_annotator']}; 3D {m['n_with_3d']}, "
              f"pose {m['n_with_pose']}; {dt * 1000:.0f} ms)")
