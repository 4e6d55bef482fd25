"""Video helpers shared by the download and frames stages: probing with ffprobe, decoding with ffmpeg."""
