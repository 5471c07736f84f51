"""Pipeline: generate one clip per shot with the `t2v` command line (no host needed).

    python3 docs/examples/t2v_batch_styles.py shots.json

shots.json: [{"name": "fox", "prompt": "a red fox in snow", "seed": 7, "styles": ["anime", "flat"]}]
Each shot becomes renders/<name>/<style>/<name>.####.png plus renders/<name>/contact-sheet.png
(`t2v generate --styles`); a shot without styles is a single clip. Exit codes follow t2v's
(2 = bad input, 130 = cancelled). Add --model to MODEL_ARGS for real weights.
"""

import json
import subprocess
import sys

T2V = "t2v"
MODEL_ARGS = []  # e.g. ["--model", "/models/Wan2.2-TI2V-5B-Diffusers"]; empty: the demo model


def command(shot):
    name = shot["name"]
    cmd = [T2V, "generate", "--prompt", shot["prompt"], "--seed", str(shot.get("seed", 0))]
    cmd += MODEL_ARGS
    cmd += ["--output", "renders/%s/%s.%%04d.png" % (name, name)]
    styles = shot.get("styles", [])
    if styles:
        cmd += ["--styles", ",".join(styles)]
    for tag in shot.get("tags", []):
        cmd += ["--tag", tag]
    return cmd


def main(path):
    with open(path) as f:
        shots = json.load(f)
    for shot in shots:
        cmd = command(shot)
        print(" ".join(cmd), flush=True)
        result = subprocess.run(cmd)
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "shots.json"))
