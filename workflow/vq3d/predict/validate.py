"""`vq3d validate-submission FILE --template TEMPLATE`: is FILE a submission the VQ3D challenge
server takes? Header, every template query present and no other, each query's three fields null
or finite numbers of shape 3, 3 and 4×4 (vq3d.formats.submission). Exit 0 when valid, 1 otherwise,
with one line per problem naming the query."""

from __future__ import annotations

import argparse
import sys

from ..formats.submission import validate_file

MAX_LINES = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="submission JSON")
    parser.add_argument("--template", help="the challenge's vq3d_test_unannotated_template.json "
                                           "(without it, completeness is not checked)")


def run(args: argparse.Namespace) -> int:
    check = validate_file(args.file, args.template)
    scope = "" if args.template else " (no --template: completeness not checked)"
    if check.ok:
        print(f"{args.file}: valid submission, {check.n_queries} queries, {check.n_world} with a "
              f"3D prediction, {check.n_pose} with a query-frame pose{scope}")
        return 0
    for line in check.problems[:MAX_LINES]:
        print(f"{args.file}: {line}", file=sys.stderr)
    more = len(check.problems) - MAX_LINES
    print(f"{args.file}: NOT a valid submission: {len(check.problems)} problem(s)"
          + (f", {more} not shown" if more > 0 else "") + scope, file=sys.stderr)
    return 1
