# Stage 4: hybrid camera posing in the scan's frame (SfM + Sim(3) registration, PnP, merge).


rule pose_sfm:
    """pycolmap SfM of one clip's frames with the scan's RADIAL_FISHEYE intrinsics."""
    input:
        frames_dir=rules.frames.output.out_dir,
        intrinsics=FILES["intrinsics"],
    output:
        out_dir=directory(str(RESULTS / "pose" / "{clip}" / "sfm")),
    params:
        scan_uid=scan_uid,
        conf=rule_params(config, "pose_sfm"),
    log:
        str(LOGS / "pose_sfm" / "{clip}.log"),
    benchmark:
        str(BENCH / "pose_sfm" / "{clip}.tsv")
    group:
        "clip_gpu"
    resources:
        runtime=clip_runtime("pose_sfm"),
        mem_mb=clip_mem("pose_sfm"),
    threads: THREADS["pose_sfm"]
    conda:
        "../envs/gpu.yaml"
    script:
        SCRIPT


rule pose_register:
    """Sim(3) from every SfM sub-model to the scan frame through the scan's geo renders."""
    input:
        unpack(synth_scans),
        unpack(clip_scan_refs),
        sfm_dir=rules.pose_sfm.output.out_dir,
    output:
        out=str(RESULTS / "pose" / "{clip}" / "registration.json"),
    params:
        scan_dir=clip_scan_dir,
        conf=rule_params(config, "pose_register"),
    group:
        "clip_cpu"
    log:
        str(LOGS / "pose_register" / "{clip}.log"),
    benchmark:
        str(BENCH / "pose_register" / "{clip}.tsv")
    resources:
        runtime=clip_runtime("pose_register"),
        mem_mb=clip_mem("pose_register"),
    threads: THREADS["pose_register"]
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


rule pose_pnp:
    """PnP relocalization of clip frames against the scan's reference views with depth."""
    input:
        unpack(synth_scans),
        unpack(clip_scan_refs),
        unpack(pnp_sfm_input),
        frames_dir=rules.frames.output.out_dir,
        intrinsics=FILES["intrinsics"],
    output:
        out=str(RESULTS / "pose" / "{clip}" / "pnp.json"),
    params:
        scan_dir=clip_scan_dir,
        scan_uid=scan_uid,
        conf=rule_params(config, "pose_pnp"),
    group:
        "clip_cpu"
    log:
        str(LOGS / "pose_pnp" / "{clip}.log"),
    benchmark:
        str(BENCH / "pose_pnp" / "{clip}.tsv")
    resources:
        runtime=clip_runtime("pose_pnp"),
        mem_mb=clip_mem("pose_pnp"),
    threads: THREADS["pose_pnp"]
    conda:
        "../envs/cpu.yaml"
    script:
        SCRIPT


if not PRECOMPUTED_POSES:

    rule pose_merge:
        """One world->camera pose per clip frame (EgoLoc pose JSON), each sub-model's Sim(3) to
        the scan frame, and a per-clip summary."""
        input:
            frames_dir=rules.frames.output.out_dir,
            sfm_dir=rules.pose_sfm.output.out_dir,
            registration=rules.pose_register.output.out,
            pnp=rules.pose_pnp.output.out,
        output:
            poses=POSES,
            summary=POSE_SUMMARY,
            scan_from_model=SCAN_FROM_MODEL,
        params:
            clip_uid="{clip}",
            conf=rule_params(config, "pose_merge"),
        group:
            "clip_cpu"
        log:
            str(LOGS / "pose_merge" / "{clip}.log"),
        benchmark:
            str(BENCH / "pose_merge" / "{clip}.tsv")
        resources:
            runtime=clip_runtime("pose_merge"),
            mem_mb=clip_mem("pose_merge"),
        conda:
            "../envs/cpu.yaml"
        script:
            SCRIPT

else:

    rule pose_import:
        """Poses from EgoLoc's/Ego4D's shared pose files (ego4d.precomputed.poses), checked per clip."""
        input:
            frames_dir=rules.frames.output.out_dir,
        output:
            poses=POSES,
            summary=POSE_SUMMARY,
        params:
            source=PRECOMPUTED_POSES,
            clip_uid="{clip}",
        log:
            str(LOGS / "pose_import" / "{clip}.log"),
        benchmark:
            str(BENCH / "pose_import" / "{clip}.tsv")
        localrule: True
        conda:
            "../envs/cpu.yaml"
        script:
            SCRIPT
