# Stage 1, getting the inputs: the synthetic benchmark is generated; real Ego4D is downloaded.

if KIND == "synth":

    rule synth:
        """Generate the synthetic egocentric benchmark (videos, annotations, scans, ground truth)."""
        output:
            annotations=[str(FILES["annotations"]), str(FILES["template"]), str(FILES["mapping"])],
            queries=str(FILES["queries"]),
            intrinsics=str(FILES["intrinsics"]),
            videos=sorted({str(FILES["videos_dir"] / f"{r.video_uid}.mp4") for r in CLIPS.values()}),
            scans=directory(str(FILES["scans_dir"])),
            gt=directory(str(FILES["gt_dir"])),
        params:
            out_dir=synth_out_dir,
            conf=rule_params(config, "synth"),
        log:
            str(LOGS / "synth.log"),
        benchmark:
            str(BENCH / "synth.tsv")
        resources:
            runtime=by_attempt(30),
            mem_mb=by_attempt(4000),
        threads: THREADS["synth"]
        conda:
            "../envs/cpu.yaml"
        script:
            SCRIPT

else:

    rule download:
        """Fetch one Ego4D clip (or the full-scale video it comes from) with the ego4d CLI."""
        output:
            video=str(FILES["videos_dir"] / "{video}.mp4"),
        params:
            uid="{video}",
            source=config["ego4d"]["source"],
            aws_profile=config["ego4d"]["aws_profile"],
            version=config["ego4d"]["version"],
        log:
            str(LOGS / "download" / "{video}.log"),
        benchmark:
            str(BENCH / "download" / "{video}.tsv")
        resources:
            runtime=by_attempt(120),
            mem_mb=by_attempt(2000),
        retries: 3
        conda:
            "../envs/cpu.yaml"
        script:
            SCRIPT
