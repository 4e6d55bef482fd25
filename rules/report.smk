# Run summary: which clips finished which stage (read by `vq3d status` and the HTML report).
