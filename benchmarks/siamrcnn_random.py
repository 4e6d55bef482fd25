"""vq3d's `siamrcnn` detect backend on Ego4D's real SiamRCNN (episodic-memory VQ2D + detectron2),
randomly initialised (no checkpoint can be downloaded), end to end on a few frames, checked
against Ego4D's own scoring loop.

    python benchmarks/siamrcnn_random.py --vq2d-root PATH/episodic-memory/VQ2D [--frames 12]

1. The model is built from the VQ2D config (configs/siam_rcnn_8_gpus.yaml) by detectron2's
   build_model with a fixed torch seed, and its random weights are saved as a checkpoint.
2. A hand-made clip (benchmarks/detect_fixture.py) and its VQ2D-style query file are written.
3. `vq3d.detect.main` (the rule's stage) runs with backend siamrcnn, config + that checkpoint:
   vq3d's own build_predictor loads it through detectron2's DefaultPredictor, reads the
   reference pad and size from the model config, scores every frame before the query frame.
4. Ego4D's `extract_clip_bboxes_and_scores` (extract_vq_detection_scores.py) runs on the same
   frames with a SiamPredictor loaded from the same checkpoint: the boxes and scores must agree.
5. Again with a model config whose INPUT.REFERENCE_CONTEXT_PAD / REFERENCE_SIZE differ from the
   defaults (8 / 192): vq3d must follow the model's config.

Exits 0 with "SKIPPED: <why>" where torch, detectron2 (built, with its C++ ops) or the VQ2D
checkout is missing. Runs on the CPU (device cpu)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIP = "clip-siam"


def unavailable(vq2d_root: Path | None) -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"torch is not installed ({exc})"
    try:
        import detectron2  # noqa: F401
        import detectron2._C  # noqa: F401
    except ImportError as exc:
        return f"detectron2 is not built here ({exc}); see envs/vq2d-detectron2.yaml"
    if vq2d_root is None or not (vq2d_root / "vq2d").is_dir() \
            or not (vq2d_root / "detectron2_extensions").is_dir():
        return f"no episodic-memory VQ2D checkout at {vq2d_root} (--vq2d-root or VQ3D_VQ2D_ROOT)"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vq2d-root", type=Path, default=os.environ.get("VQ3D_VQ2D_ROOT"))
    ap.add_argument("--config", type=Path, default=None, help="default: <root>/configs/siam_rcnn_8_gpus.yaml")
    ap.add_argument("--frames", type=int, default=12, help="frames scored (those before the query frame)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    why = unavailable(args.vq2d_root)
    if why:
        print(f"SKIPPED: {why}")
        return 0

    import cv2
    import numpy as np
    import torch

    sys.path.insert(0, str(args.vq2d_root))
    sys.path.insert(0, str(HERE))
    import detect_fixture as fx
    from detectron2.modeling import build_model
    from detectron2_extensions.config import get_cfg
    from vq2d.baselines import SiamPredictor
    from vq2d.baselines.utils import extract_window_with_context
    import extract_vq_detection_scores as ego4d  # the VQ2D script's scoring loop

    from vq3d.detect import main as detect_main
    from vq3d.detect.backends import siamrcnn as adapter
    from vq3d.formats.clip_detections import read_clip_detections
    from vq3d.stages import stage_conf

    work = args.work or Path(tempfile.mkdtemp(prefix="vq3d-siamrcnn-"))
    work.mkdir(parents=True, exist_ok=True)
    config = args.config or args.vq2d_root / "configs" / "siam_rcnn_8_gpus.yaml"
    report: dict = {"config": str(config), "torch": torch.__version__, "device": "cpu",
                    "frames": args.frames}
    import detectron2
    report["detectron2"] = detectron2.__version__

    # 1. random weights
    t0 = time.perf_counter()
    cfg = get_cfg()
    cfg.set_new_allowed(True)
    cfg.merge_from_file(str(config))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    ckpt = work / "model_random.pth"
    torch.save({"model": model.state_dict()}, ckpt)
    n_params = sum(p.numel() for p in model.parameters())
    report.update(meta_architecture=cfg.MODEL.META_ARCHITECTURE, parameters=n_params,
                  build_s=round(time.perf_counter() - t0, 1))
    print(f"built {cfg.MODEL.META_ARCHITECTURE} ({n_params / 1e6:.1f} M parameters, random, seed "
          f"{args.seed}) in {report['build_s']} s -> {ckpt}", flush=True)
    del model

    # 2. a clip: object visible in the scored frames, crop cut after the query frame
    qf = args.frames
    n = qf + 8
    frames_dir = work / "frames"
    gt, crop = fx.make_clip(frames_dir, seed=args.seed, n_frames=n, visible=range(2, qf - 2),
                            crop_frame=qf + 4, query_frame=qf)
    queries = work / "q.json"
    fx.write_query_file(queries, CLIP, [{"query_frame": qf, "crop": crop}])
    cf, x, y, w, h = crop
    visual_crop = {"frame_number": cf, "x": x, "y": y, "width": w, "height": h,
                   "original_width": 640, "original_height": 480}

    def run(config_path: Path, tag: str) -> dict:
        # 3. vq3d: the rule's stage, through vq3d's own predictor loading
        conf = stage_conf("detect", backend="siamrcnn", top_k=100, peaks={"method": "all"},
                          siamrcnn={"config": str(config_path), "checkpoint": str(ckpt),
                                    "vq2d_root": str(args.vq2d_root), "device": "cpu",
                                    "batch_size": args.batch_size})
        out = work / f"detect_{tag}.json"
        t1 = time.perf_counter()
        detect_main(frames_dir, queries, out, CLIP, conf)
        t_vq3d = time.perf_counter() - t1
        ours = dict(read_clip_detections(out).queries[0].frames)

        # 4. Ego4D's loop on the same RGB frames, own SiamPredictor from the same checkpoint
        ecfg = get_cfg()
        ecfg.set_new_allowed(True)
        ecfg.merge_from_file(str(config_path))
        ecfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = conf["siamrcnn"]["score_thresh"]
        ecfg.MODEL.WEIGHTS = str(ckpt)
        ecfg.MODEL.DEVICE = "cpu"
        ecfg.INPUT.FORMAT = "RGB"
        net = SiamPredictor(ecfg)
        reader = [cv2.cvtColor(cv2.imread(str(frames_dir / f"color_{i:07d}.jpg")), cv2.COLOR_BGR2RGB)
                  for i in range(n)]
        t2 = time.perf_counter()
        ret_bboxes, ret_scores = ego4d.extract_clip_bboxes_and_scores(
            reader, "synthetic", visual_crop, qf, net, batch_size=args.batch_size,
            downscale_height=conf["siamrcnn"]["downscale_height"])
        t_ego4d = time.perf_counter() - t2

        # the reference windows themselves
        pad, size = ecfg.INPUT.REFERENCE_CONTEXT_PAD, ecfg.INPUT.REFERENCE_SIZE
        ref_t = torch.as_tensor(reader[cf].transpose(2, 0, 1)[None]).float()
        theirs_ref = extract_window_with_context(ref_t, (x, y, x + w, y + h), pad, size=size,
                                                 pad_value=125)
        theirs_ref = theirs_ref.byte()[0].numpy().transpose(1, 2, 0)
        ours_ref = adapter.reference_window(reader[cf], (x, y, x + w, y + h),
                                            *adapter.reference_params(net))
        ref_diff = np.abs(ours_ref.astype(int) - theirs_ref.astype(int))

        # compare per frame: Ego4D's boxes sorted by score, top 100, vs ours
        n_frames_equal, max_score_diff, n_boxes = 0, 0.0, 0
        for fno in range(qf):
            order = np.argsort(-np.asarray(ret_scores[fno]), kind="stable")[:100]
            e_boxes = [(b.x1, b.y1, b.x2, b.y2) for b in (ret_bboxes[fno][i] for i in order)]
            e_scores = [ret_scores[fno][i] for i in order]
            o = ours.get(fno, [])
            o_boxes = [(int(b.x1), int(b.y1), int(b.x2), int(b.y2)) for b in o]
            n_boxes += len(o)
            if o_boxes == e_boxes:
                n_frames_equal += 1
            if len(o) == len(e_scores) and o:
                max_score_diff = max(max_score_diff, max(abs(b.score - s) for b, s in zip(o, e_scores)))
        res = {"reference_pad": int(pad), "reference_size": int(size),
               "reference_shape": list(ours_ref.shape), "reference_max_abs_diff": int(ref_diff.max()),
               "reference_pixels_differing": int((ref_diff > 0).sum()),
               "frames_scored": len(ours), "frames_identical_boxes": n_frames_equal,
               "boxes_per_frame": round(n_boxes / max(len(ours), 1), 1),
               "max_score_diff": float(max_score_diff),
               "vq3d_s": round(t_vq3d, 1), "vq3d_s_per_frame": round(t_vq3d / max(len(ours), 1), 2),
               "ego4d_loop_s": round(t_ego4d, 1)}
        print(f"[{tag}] pad {pad}, size {size}: reference window max |diff| {res['reference_max_abs_diff']} "
              f"({res['reference_pixels_differing']} px differ); {len(ours)} frames scored, "
              f"{n_frames_equal} with boxes identical to Ego4D's loop, max score diff "
              f"{max_score_diff:.2e}, {res['boxes_per_frame']} boxes/frame; vq3d {t_vq3d:.1f} s "
              f"({res['vq3d_s_per_frame']} s/frame), Ego4D loop {t_ego4d:.1f} s", flush=True)
        return res

    report["vq2d_config"] = run(config, "vq2d")
    # 5. a model config with another reference pad/size: vq3d follows the model, not its config
    other = work / "siam_rcnn_pad8_size192.yaml"
    other.write_text(f'_BASE_: "{config}"\nINPUT:\n  REFERENCE_CONTEXT_PAD: 8\n  REFERENCE_SIZE: 192\n')
    report["pad8_size192"] = run(other, "pad8_size192")
    ok = (report["pad8_size192"]["reference_shape"] == [192, 192, 3]
          and report["vq2d_config"]["reference_shape"] == [256, 256, 3]
          and all(report[k]["frames_scored"] == qf for k in ("vq2d_config", "pad8_size192")))
    report["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
