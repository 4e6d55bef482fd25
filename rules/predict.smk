# Stage 5: lift peak detections to 3D, aggregate, write the submission, evaluate (val).


rule predict:
    """3D position of every query of one clip, in the scan frame and the query frame's camera."""
    input:
        unpack(mono_frames),
        unpack(merged_scan_from_model),
        unpack(synth_scans),
        detections=rules.peaks.output.out,
        poses=POSES,
        sfm_dir=rules.pose_sfm.output.out_dir,
        queries=FILES["queries"],
        intrinsics=FILES["intrinsics"],
    output:
        out=str(RESULTS / "predict" / "{clip}.json"),
    params:
        clip_uid="{clip}",
        scan_uid=scan_uid,
        scan_dir=clip_scan_dir,
        conf=rule_params(config, "predict"),
    group:
        "clip_cpu"
    log:
        str(LOGS / "predict" / "{clip}.log"),
    benchmark:
        str(BENCH / "predict" / "{clip}.tsv")
    resources:
        runtime=clip_runtime("predict"),
        mem_mb=clip_mem("predict"),
    conda:
        PREDICT_ENV
    script:
        SCRIPT


rule submission:
    """The challenge submission: the annotation file/template filled with every prediction."""
    input:
        predictions=expand(rules.predict.output.out, clip=sorted(CLIPS)),
        annotations=FILES["annotations"],
        mapping=FILES["mapping"],
    output:
        submission=str(RESULTS / "submission.json"),
    params:
    log:
        str(LOGS / "submission.log"),
    benchmark:
        str(BENCH / "submission.tsv")
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule evaluate:
    """L2, angle, Succ, Succ*, QwP against the val annotations, plus a per-query table."""
    input:
        gt=FILES["annotations"],
        pred=rules.submission.output.submission,
    output:
        metrics=report(str(RESULTS / "metrics.json"), caption="../docs/report/metrics.rst", category="Metrics"),
        table=str(RESULTS / "per_query.csv"),
    params:
    log:
        str(LOGS / "evaluate.log"),
    benchmark:
        str(BENCH / "evaluate.tsv")
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT
