# Stage 3b (one job per scan, not per clip): what PnP and registration need from a real scan,
# rendered from its textured mesh. The synthetic scans carry their own views (no job).


rule scan_refs:
    """Reference views (RGB, metric depth, cam_from_world) and geo renders of one Matterport scan."""
    output:
        out_dir=directory(str(SCAN_REFS / "{scan}")),
    params:
        scan_dir=scan_folder_of,
        conf=rule_params(config, "scan_refs"),
    log:
        str(LOGS / "scan_refs" / "{scan}.log"),
    benchmark:
        str(BENCH / "scan_refs" / "{scan}.tsv")
    resources:
        runtime=by_attempt(60),
        mem_mb=by_attempt(8000),
    threads: THREADS["scan_refs"]
    conda:
        "../envs/render.yaml"
    script:
        SCRIPT
