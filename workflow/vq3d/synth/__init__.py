"""The synthetic egocentric benchmark: rooms with known geometry, rendered to H.264 videos with
Ego4D-shaped annotations and ground truth for every stage."""
