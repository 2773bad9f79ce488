"""`a100m view` (a web page over release files) and `a100m plot` (PNGs of a tree or a dataset)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    view = commands.add_parser(
        "view",
        help="look at datasets in the browser: each video beside its tree of segments and their texts",
        description="Serves a page over release files (our parquet, the official parquet or JSON, an `a100m run` "
        "output folder): the videos, a search over every text, and per video the player beside its tree as a "
        "timeline (the nodes covering the playing time highlighted). Loopback by default; prints the URL. With "
        "--export, writes the same page as a static site instead.",
    )
    view.add_argument("datasets", nargs="+", metavar="DATASET", help="a release file, or a folder of them")
    view.add_argument(
        "--videos",
        default=None,
        metavar="DIR_OR_S3_PREFIX",
        help="where the video files are, matched by video_uid or file stem (an `a100m run` folder knows its own)",
    )
    view.add_argument(
        "--against",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="another dataset of the same videos (e.g. a re-annotation): its texts beside each node's, "
        "differing nodes marked",
    )
    view.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    view.add_argument(
        "--port", type=int, default=None, help=f"port (default {DEFAULT_PORT}, or a free one when that is taken)"
    )
    view.add_argument("--export", default=None, metavar="OUTDIR", help="write a static site here instead of serving")
    view.add_argument("--copy-videos", action="store_true", help="with --export: copy the videos into OUTDIR/videos")
    view.set_defaults(run=view_command)

    plot = commands.add_parser(
        "plot",
        help="PNGs: one video's tree as a timeline, or a dataset's distributions",
        description="Draws one video's tree (--video-uid, one row per level) into the PNG --out, or with --stats "
        "the dataset's distributions (node durations, depth, leaf durations, segments per minute, gpt field "
        "lengths, most frequent action verbs) as PNGs in the folder --out.",
    )
    plot.add_argument("dataset", metavar="DATASET", help="a release file, or a folder of them")
    which = plot.add_mutually_exclusive_group(required=True)
    which.add_argument("--video-uid", default=None, help="the video to draw")
    which.add_argument("--stats", action="store_true", help="the dataset's distributions")
    plot.add_argument("--out", required=True, help="the PNG (--video-uid) or a folder (--stats)")
    plot.set_defaults(run=plot_command)


DEFAULT_PORT = 8765


def free_port(host: str, wanted: int) -> int:
    """`wanted` when nothing listens there, else a free port the system picks."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, wanted))
            return wanted
        except OSError:
            probe.bind((host, 0))
            return int(probe.getsockname()[1])


def view_command(args: argparse.Namespace) -> int:
    from action100m.viewer.catalog import load_catalog

    if args.videos and "://" not in args.videos and not Path(args.videos).is_dir():
        print(f"error: --videos {args.videos}: no such folder", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(args.datasets, args.videos, against=args.against)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.videos and not any(video.source for video in catalog.videos):
        print(f"note: no video file under {args.videos} matched a video of the datasets (by uid or file stem)")
    if args.export:
        from action100m.viewer.site import export_site

        page = export_site(catalog, Path(args.export), copy_videos=args.copy_videos)
        print(f"{page} ({len(catalog.videos)} videos): open it in a browser, or serve the folder")
        return 0
    from action100m.viewer.server import serve

    wanted = args.port or DEFAULT_PORT
    port = free_port(args.host, wanted)
    if port != wanted:
        if args.port is not None:
            print(f"error: {args.host}:{wanted} is in use (another viewer?): choose another --port", file=sys.stderr)
            return 2
        print(f"port {wanted} is in use (another viewer?); serving on {port}")
    serve(catalog, args.host, port)
    return 0


def plot_command(args: argparse.Namespace) -> int:
    from action100m.viewer.catalog import load_catalog
    from action100m.viewer.plot import plot_stats, plot_timeline

    try:
        catalog = load_catalog([args.dataset])
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stats:
        for path in plot_stats(catalog.videos, Path(args.out)):
            print(path)
        return 0
    matches = [video for video in catalog.videos if video.uid == args.video_uid]
    if not matches:
        known = ", ".join(v.uid for v in catalog.videos[:5])
        print(f"error: no video {args.video_uid!r} in {args.dataset} (it has {known}...)", file=sys.stderr)
        return 2
    print(plot_timeline(matches[0], Path(args.out)))
    return 0
