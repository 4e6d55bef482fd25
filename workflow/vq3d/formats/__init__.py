"""Every file format published or passed between stages: typed readers and writers.

Readers raise vq3d.errors.InputError(path, msg) naming the field on malformed input; writers
write atomically. See docs/formats.md."""

from .intrinsics import Fisheye, lookup, read_intrinsics, resolution_key, write_intrinsics
from .mapping import QueryMapping, read_mapping, write_mapping
from .metadata import ClipName, read_clip_names, write_clip_names
from .peaks import (DetectionDump, DumpFrame, DumpQuery, PeakBox, PeakClip, PeakEntry, PeakFile,
                    PeakPrediction, PeakTrack, PeakVideo, ValAnnotEntry, dataset_uid_keys,
                    read_detection_file, read_dump, read_peaks, read_val_annot, write_dump,
                    write_peaks)
from .poses import ClipPoses, read_poses, write_poses
from .queries import Box, ClipTiming, Query, QueryFile, read_queries, write_queries
from .results import Prediction, fill_submission, read_results
from .submission import SubmissionCheck, validate_file as validate_submission
from .vq3d_annotations import (Box3D, VQ3DFile, VQ3DQuery, annotation_to_matterport,
                               matterport_to_annotation, read_vq3d, write_vq3d)

__all__ = [
    "DetectionDump", "DumpFrame", "DumpQuery", "PeakClip", "PeakPrediction", "PeakTrack",
    "PeakVideo", "read_detection_file", "read_dump", "write_dump",
    "Box", "Box3D", "ClipName", "ClipPoses", "ClipTiming", "Fisheye", "PeakBox", "PeakEntry",
    "PeakFile", "Prediction", "Query", "QueryFile", "QueryMapping", "ValAnnotEntry", "VQ3DFile",
    "VQ3DQuery", "annotation_to_matterport", "dataset_uid_keys", "fill_submission", "lookup",
    "matterport_to_annotation", "read_clip_names", "read_intrinsics", "read_mapping",
    "read_peaks", "read_poses", "read_queries", "read_results", "read_val_annot", "read_vq3d",
    "resolution_key", "SubmissionCheck", "validate_submission", "write_clip_names", "write_intrinsics", "write_mapping", "write_peaks",
    "write_poses", "write_queries", "write_vq3d",
]
