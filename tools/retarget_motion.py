r"""Retarget clips from one character onto another (a robot's MJCF or URDF) by IK with mink.

    python tools/retarget_motion.py --source_char data/assets/humanoid/humanoid.xml \
        --target_char data/assets/g1/g1.xml --mapping tools/retarget/mappings/humanoid_to_g1.yaml \
        --out output/motions/g1_walk.npz data/motions/humanoid/humanoid_walk_forward_medium.npz
    python tools/retarget_motion.py --target_char data/assets/duckling/duckling.xml \
        --mapping tools/retarget/mappings/humanoid_to_duckling.yaml --out_dir output/motions/duckling \
        data/motions/humanoid/*.npz

Inputs are native clips (``.npz``) on the source character; other formats (DeepMimic
``.txt``, IsaacGymEnvs ``.npy``, MimicKit ``.pkl``, BVH ``.bvh``) are first imported onto the
source character with tools/motion_import (as tools/import_motion.py does), e.g. the CMU clip:

    python tools/retarget_motion.py --target_char data/assets/g1/g1.xml \
        --mapping tools/retarget/mappings/humanoid_to_g1.yaml --clamp_joints \
        --out output/motions/g1_131_01.npz ../shared/data/bvh_cmu/131_01.bvh
 The mapping YAML names
the target body of each source body with its task weights (tools/retarget/mapping.py);
every frame is solved with joint ranges and velocity limits, starting from the previous
one, stance feet held still and the character kept above the floor (tools/retarget/ik.py).
Per clip a quality report is printed: stance foot slip, ground penetration, joint-limit
hits, task error per mapped body, frames/s. A user mistake prints one ``error: ...`` line,
exit code 2.
"""
import argparse
import json
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mimickit.anim.motion import Motion  # noqa: E402
from mimickit.util.errors import MimicKitError, require_file  # noqa: E402
from tools.cli import clip_outputs, run_tool  # noqa: E402
from tools.retarget import Retargeter, load_mapping  # noqa: E402

DEFAULT_SOURCE = "data/assets/humanoid/humanoid.xml"


def build_parser() -> argparse.ArgumentParser:
    """The command line's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="clips on the source character (.npz), or files "
                   "tools/import_motion.py reads (.txt, .npy, .pkl, .bvh)")
    p.add_argument("--source_char", default=DEFAULT_SOURCE, help="source character (default: %(default)s)")
    p.add_argument("--target_char", required=True, help="target character, MJCF or URDF")
    p.add_argument("--mapping", required=True, help="mapping YAML (tools/retarget/mappings/*.yaml)")
    p.add_argument("--out", default=None, help="output clip (.npz) for a single input")
    p.add_argument("--out_dir", default=None, help="output folder, one <input name>.npz per input")
    p.add_argument("--clamp_joints", action="store_true",
                   help="when importing a non-native input: clamp joint angles beyond the source character's "
                        "ranges instead of refusing the clip")
    p.add_argument("--bvh_scale", type=float, default=None, metavar="M",
                   help="a .bvh input's metres per file unit (default: inferred, see tools/import_motion.py)")
    p.add_argument("--max_frames", type=int, default=None, help="retarget only the first N frames")
    p.add_argument("--report", default=None, help="also write the quality reports as JSON here")
    return p


def read_clip(path: str, source_char: str, clamp_joints: bool = False,
              bvh_scale: Optional[float] = None) -> Motion:
    """A clip on the source character: a native ``.npz`` as it is, another format imported
    (:meth:`tools.motion_import.Importer.import_file` with ``clamp_joints`` and ``bvh_scale``)."""
    require_file(path, "motion file")
    if path.lower().endswith(".npz"):
        return Motion.load(path)
    from tools.motion_import import Importer
    return Importer(source_char).import_file(path, clamp_joints=clamp_joints, bvh_scale=bvh_scale).motion


def retarget_files(args: argparse.Namespace) -> List[dict]:
    """Retarget every input, save it, print its report; the reports as dicts (with ``input`` and ``output``)."""
    outs = clip_outputs(args.inputs, args.out, args.out_dir)
    for path, what in ((args.source_char, "source character"), (args.target_char, "target character"),
                       (args.mapping, "mapping file")):
        require_file(path, what)
    for path in args.inputs:
        require_file(path, "motion file")
    if args.max_frames is not None and args.max_frames < 2:
        raise MimicKitError("--max_frames must be at least 2, got {}".format(args.max_frames))
    retargeter = Retargeter(args.source_char, args.target_char, load_mapping(args.mapping))
    reports = []
    for src, out in zip(args.inputs, outs):
        clip = read_clip(src, args.source_char, args.clamp_joints, args.bvh_scale)
        if args.max_frames is not None and clip.num_frames > args.max_frames:
            clip = Motion(clip.fps, clip.loop_mode, clip.frames[:args.max_frames], clip.dof_names, clip.extras, src)
        result = retargeter.retarget(clip, src)
        if os.path.dirname(out):
            os.makedirs(os.path.dirname(out), exist_ok=True)
        result.motion.save(out)
        print("{} -> {}: {} frames on {}, scale {:.4f}".format(src, out, result.motion.num_frames, args.target_char,
                                                               result.scale))
        for line in result.quality.lines():
            print("  " + line)
        report = result.quality.as_dict()
        report.update(input=src, output=out, scale=result.scale)
        reports.append(report)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(reports, f, indent=1)
    return reports


def main(argv: Optional[List[str]] = None) -> int:
    """Run the retargeter; the exit status (0, or 2 after a user mistake)."""
    args = build_parser().parse_args(argv)
    return run_tool(lambda: retarget_files(args))


if __name__ == "__main__":
    sys.exit(main())
