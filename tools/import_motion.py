"""Import motion clips from other projects as native mimickit clips for our character.

Formats: DeepMimic ``.txt`` (JSON, Y-up), IsaacGymEnvs AMP ``.npy`` (pickled
SkeletonMotion, Z-up), MimicKit ``.pkl`` (pickled dict, Z-up), AMP_for_hardware ``.txt``
(JSON with ``FrameDuration``; A1 joint angles mapped onto our dofs by name, e.g. for
data/assets/quadruped/quadruped.xml), BVH ``.bvh`` (Y-up; CMU and Mixamo/LAFAN1 joint names;
read with bvhio; the unit inferred from the leg length or given by --bvh_scale). Pickles are
read with a restricted unpickler that admits only numpy arrays and plain containers.

    python tools/import_motion.py --char data/assets/humanoid/humanoid.xml --out walk.npz \\
        ../shared/data/deepmimic/motions/humanoid3d_walk.txt
    python tools/import_motion.py --out_dir /tmp/clips ../shared/data/deepmimic/motions/*.txt
    python tools/import_motion.py --char data/assets/quadruped/quadruped.xml --out_dir /tmp/clips \\
        --dataset /tmp/clips/dataset.yaml ../shared/data/amp_for_hardware/mocap_motions/*.txt
    python tools/import_motion.py --out /tmp/131_01.npz --clamp_joints ../shared/data/bvh_cmu/131_01.bvh

Each clip is retargeted by joint name (see tools/motion_import/retarget.py), its root
translation scaled by the leg-length ratio, its capture floor levelled when it is tilted
(--level_floor; see tools/motion_import/ground.py), its stance feet planted on the floor
without sliding by inverse kinematics when they stray or slip (--fix_contacts; needs mink;
see tools/motion_import/contacts.py; it also lifts any other body out of the floor, and
leaves a clip lying on the ground as it is), and shifted so its lowest point touches the
floor. One summary line per clip; a user mistake prints one line on stderr, exit 2.
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tqdm import tqdm  # noqa: E402

from mimickit.anim.motion_lib import save_dataset  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from tools.cli import clip_outputs  # noqa: E402
from tools.motion_import import FORMATS, Importer  # noqa: E402
from tools.motion_import.amp_hardware import parse_leg_order  # noqa: E402
from tools.motion_import.contacts import CONTACT_FIX_MODES, MINK_INSTALL  # noqa: E402
from tools.motion_import.ground import LEVEL_FLOOR_MODES  # noqa: E402
from tools.motion_import.joint_space import POINT_TOL  # noqa: E402

DEFAULT_CHAR = "data/assets/humanoid/humanoid.xml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="source motion files")
    p.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="source format (default: from the extension, else the content)")
    p.add_argument("--char", default=DEFAULT_CHAR, help="our character's MJCF (default: %(default)s)")
    p.add_argument("--out", default=None, help="output clip (.npz) for a single input")
    p.add_argument("--out_dir", default=None, help="output folder, one <input name>.npz per input")
    p.add_argument("--dataset", default=None, metavar="YAML",
                   help="also write a dataset YAML listing the clips written, with their weights (an "
                        "AMP_for_hardware file's MotionWeight, else 1), for --motion_file")
    p.add_argument("--loop", choices=("wrap", "clamp"), default=None,
                   help="loop mode of the clip (default: the source's; clamp when it has none)")
    p.add_argument("--source_char", default=None,
                   help="source character: DeepMimic character .txt, or MJCF for amp_npy (feet) / mimickit_pkl")
    p.add_argument("--joint_map", default=None, help="YAML 'source joint: our body' overriding the name table "
                        "('source joint: our dof' for amp_hardware)")
    p.add_argument("--foot_bodies", nargs="+", metavar="NAME", default=None,
                   help="our character's bodies that touch the ground, for the ground alignment, floor levelling "
                        "and contact cleanup (the first also gives the leg length; default: bodies named *foot*)")
    p.add_argument("--clamp_joints", action="store_true",
                   help="clamp hinge angles beyond our character's ranges (a note lists the dofs, frames and largest "
                        "excess) instead of refusing the clip (exit 2); 1e-3 rad beyond counts as within")
    p.add_argument("--leg_order", default=None, metavar="LEGS",
                   help="amp_hardware: the order the file stores its leg blocks in, e.g. FL,FR,RL,RR (default: "
                        "FR,FL,RR,RL, AMP_for_hardware's)")
    p.add_argument("--toe_tol", type=float, default=POINT_TOL, metavar="M",
                   help="amp_hardware: refuse a clip whose toes, by our kinematics with the joint map, are further "
                        "than this from where the file puts them (m, default: %(default)s; the error names the leg "
                        "order that fits)")
    p.add_argument("--bvh_scale", type=float, default=None, metavar="M",
                   help="bvh: metres per file unit (default: inferred from the leg length among CMU's 0.056444, "
                        "cm, inch and m)")
    p.add_argument("--no_ground_align", action="store_true",
                   help="keep the source root height (only scaled) instead of putting the lowest body point on the "
                        "floor")
    p.add_argument("--level_floor", choices=LEVEL_FLOOR_MODES, default="auto",
                   help="remove a tilted capture floor from the root height: auto (when the plane fitted to the "
                        "stances is trustworthy and narrows their height band), on (whenever a plane fits), off "
                        "(default: %(default)s)")
    p.add_argument("--fix_contacts", choices=CONTACT_FIX_MODES, default="auto",
                   help="plant the stance feet flat on the floor without sliding, by inverse kinematics with mink "
                        "({}): auto (when the stance feet stray more than 1.5 cm from one floor height or slip more "
                        "than 2 cm in a stance; skipped with a note without mink), on (every clip with stances), "
                        "off (default: %(default)s)".format(MINK_INSTALL))
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run the importer; returns the exit status (0, or 2 after a user mistake)."""
    args = build_parser().parse_args(argv)
    try:
        outputs = clip_outputs(args.inputs, args.out, args.out_dir)
        importer = Importer(args.char, foot_bodies=args.foot_bodies)
        leg_order = parse_leg_order(args.leg_order) if args.leg_order else None
    except MimicKitError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    failed = 0
    written, weights = [], []
    many = len(args.inputs) > 1
    for src, out in tqdm(list(zip(args.inputs, outputs)), desc="importing", unit="clip", disable=not many):
        try:
            result = importer.import_file(src, fmt=args.format, source_char=args.source_char,
                                          joint_map_file=args.joint_map, loop_mode=args.loop,
                                          ground_align=not args.no_ground_align, level_floor_mode=args.level_floor,
                                          contact_fix_mode=args.fix_contacts, clamp_joints=args.clamp_joints,
                                          leg_order=leg_order, point_tol=args.toe_tol, bvh_scale=args.bvh_scale)
            result.motion.save(out)
        except MimicKitError as e:
            failed += 1
            tqdm.write("error: {}".format(e), file=sys.stderr)
            continue
        tqdm.write(result.summary(out))
        written.append(out)
        weights.append(float(result.motion.extras.get("motion_weight", 1.0)))
    if args.dataset and written:
        save_dataset(args.dataset, written, weights, "# written by tools/import_motion.py; clip paths relative to the "
                     "directory it ran in\n")
        print("{}: {} clips".format(args.dataset, len(written)))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
