# Stage 3: score the frames before each query frame against the visual crop, then pick peaks
# (its own rule: a peak setting reruns this cheap step, not the detector).


rule detect:
    """Per-frame top-k boxes for every query of one clip."""
    input:
        frames_dir=rules.frames.output.out_dir,
        queries=FILES["queries"],
    output:
        out=str(RESULTS / "detect" / "{clip}.json"),
    params:
        clip_uid="{clip}",
        conf=rule_params(config, "detect"),
    log:
        str(LOGS / "detect" / "{clip}.log"),
    benchmark:
        str(BENCH / "detect" / "{clip}.tsv")
    group:
        "clip_gpu"
    resources:
        runtime=clip_runtime("detect"),
        mem_mb=clip_mem("detect"),
    threads: THREADS["detect"]
    conda:
        DETECT_ENV
    script:
        SCRIPT


rule peaks:
    """Every query's detection peaks, picked from detect's per-frame boxes."""
    input:
        detections=rules.detect.output.out,
    output:
        out=str(RESULTS / "peaks" / "{clip}.json"),
    params:
        clip_uid="{clip}",
        conf=rule_params(config, "peaks"),
    log:
        str(LOGS / "peaks" / "{clip}.log"),
    benchmark:
        str(BENCH / "peaks" / "{clip}.tsv")
    # In detect's group (seconds of CPU): detect, peaks and the detection figure stay one
    # connected component, i.e. one Slurm job; a peaks-only rerun asks for no GPU (no gres).
    group:
        "clip_gpu"
    resources:
        runtime=clip_runtime("peaks"),
        mem_mb=clip_mem("peaks"),
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule export_peaks:
    """The split's detections in EgoLoc's published formats (peak file and per-frame dump)."""
    input:
        detections=expand(rules.peaks.output.out, clip=sorted(CLIPS)),
        queries=FILES["queries"],
    output:
        peaks=str(RESULTS / f"vq2d_{SPLIT}_vq3d_peak_clip.json"),
        dump=str(RESULTS / f"vq3d_detection_{SPLIT}.json"),
    params:
        split=SPLIT,
    log:
        str(LOGS / "export_peaks.log"),
    benchmark:
        str(BENCH / "export_peaks.tsv")
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT
