"""Figures and tables for the run's HTML report (`snakemake --report report.html`).

One module per figure; each has a plot function taking data (testable on hand-made inputs) and a
stage `main()` taking paths (called by rules/report.smk). Figures are drawn on a bare
matplotlib `Figure` (Agg canvas, no pyplot state) and written atomically."""
