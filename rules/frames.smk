# Stage 2: cut each clip from its video and extract its frames at the clip fps (EgoLoc layout).


rule frames:
    """Frames of one clip: clips_frames/<clip>/color_%07d.jpg, frame i = Ego4D clip frame i."""
    input:
        video=clip_video,
        queries=FILES["queries"],
    output:
        out_dir=directory(str(RESULTS / "clips_frames" / "{clip}")),
    params:
        clip_uid="{clip}",
        video_is_clip=video_is_clip,
        conf=rule_params(config, "frames"),
    log:
        str(LOGS / "frames" / "{clip}.log"),
    benchmark:
        str(BENCH / "frames" / "{clip}.tsv")
    group:
        "clip_gpu"
    resources:
        runtime=clip_runtime("frames"),
        mem_mb=clip_mem("frames"),
    threads: THREADS["frames"]
    conda:
        "../envs/gpu.yaml"
    script:
        SCRIPT
