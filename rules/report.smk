# The run's HTML report: figures made by the workflow, gathered by `snakemake --report report.html`.
# --report only shows outputs of jobs in the DAG of its targets, so the figures are targets of
# `all` (REPORT_PLOTS, below, is added to final_targets() in common.smk).

# Clip figures carry ONE label: the report turns a second label with two values, each on half
# of a subcategory's results, into a toggle, and with one query per clip that broke the page.

REPORT = RESULTS / "report"


rule report_pose_coverage:
    """Share and timeline of pose sources (SfM, PnP, interpolated, none) over all clips."""
    input:
        summaries=expand(POSE_SUMMARY, clip=sorted(CLIPS)),
    output:
        out=report(
            str(REPORT / "pose_coverage.png"),
            caption="../docs/report/pose_coverage.rst",
            category="Poses",
            labels={"figure": "pose coverage, all clips"},
        ),
    params:
    log:
        str(LOGS / "report_pose_coverage.log"),
    benchmark:
        str(BENCH / "report_pose_coverage.tsv")
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule report_trajectory:
    """Top-down camera trajectory of one clip with predicted and ground-truth object positions."""
    input:
        poses=POSES,
        summary=POSE_SUMMARY,
        predictions=rules.predict.output.out,
        annotations=FILES["annotations"],
        mapping=FILES["mapping"],  # predictions are keyed by VQ2D query, annotations by VQ3D query
    output:
        out=report(
            str(REPORT / "trajectory" / "{clip}.png"),
            caption="../docs/report/trajectory.rst",
            category="Clips",
            subcategory="{clip}",
            labels={"figure": "trajectory, top-down"},
        ),
    params:
        clip_uid="{clip}",
    group:
        "clip_cpu"
    log:
        str(LOGS / "report_trajectory" / "{clip}.log"),
    benchmark:
        str(BENCH / "report_trajectory" / "{clip}.tsv")
    resources:
        runtime=clip_runtime("report_trajectory"),
        mem_mb=clip_mem("report_trajectory"),
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule report_detections:
    """Per query of one clip: score curve with peaks, visual crop, last-peak frame with its box."""
    input:
        detections=rules.peaks.output.out,
        queries=FILES["queries"],
        frames_dir=rules.frames.output.out_dir,
    output:
        out_dir=report(
            directory(str(REPORT / "detections" / "{clip}")),
            patterns=["{query}.png"],
            caption="../docs/report/detections.rst",
            category="Clips",
            subcategory="{clip}",
            labels={"figure": "detections {query}"},
        ),
    params:
        clip_uid="{clip}",
    # It reads only the frames and detect's output: in clip_cpu it would be a connected component
    # of its own, i.e. a third Slurm job per clip (a group job is one connected subgraph).
    group:
        "clip_gpu"
    log:
        str(LOGS / "report_detections" / "{clip}.log"),
    benchmark:
        str(BENCH / "report_detections" / "{clip}.tsv")
    resources:
        runtime=clip_runtime("report_detections"),
        mem_mb=clip_mem("report_detections"),
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule report_metrics_table:
    """The val metrics and every query's row as one HTML table."""
    input:
        metrics=rules.evaluate.output.metrics,
        table=rules.evaluate.output.table,
    output:
        out=report(
            str(REPORT / "metrics.html"),
            caption="../docs/report/metrics_table.rst",
            category="Metrics",
        ),
    params:
        split=SPLIT,
    log:
        str(LOGS / "report_metrics_table.log"),
    benchmark:
        str(BENCH / "report_metrics_table.tsv")
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


# Every figure and table of the report (the metrics table only where there is ground truth).
REPORT_PLOTS = [
    rules.report_pose_coverage.output.out,
    *expand(rules.report_trajectory.output.out, clip=sorted(CLIPS)),
    *expand(rules.report_detections.output.out_dir, clip=sorted(CLIPS)),
    *([rules.report_metrics_table.output.out] if SPLIT == "val" else []),
]
