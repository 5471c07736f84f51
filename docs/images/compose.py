"""Composes the docs' side-by-side pictures from frames `t2v generate` wrote (see the commands in
docs/user-guide.md, "Upscaling" and "A draft with the fast decoder"):

    python3 docs/images/compose.py out 8

reads out/full.0008.png, out/fast.0008.png and out/up.0008.png and writes
docs/images/fast-decoder-frame.png (the full decode and the fast decode, each enlarged 2x by
repeating pixels) and docs/images/upscaled-frame.png (the full decode enlarged 2x bicubic, and
the demo model's 2x upscaler). Needs Pillow.
"""

import sys
from pathlib import Path

from PIL import Image

GAP = 6


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    out = Image.new("RGB", (left.width + GAP + right.width, left.height), (128, 128, 128))
    out.paste(left, (0, 0))
    out.paste(right, (left.width + GAP, 0))
    return out


def main() -> None:
    frames = Path(sys.argv[1])
    index = int(sys.argv[2])
    here = Path(__file__).parent
    full = Image.open(frames / f"full.{index:04d}.png").convert("RGB")
    fast = Image.open(frames / f"fast.{index:04d}.png").convert("RGB")
    up = Image.open(frames / f"up.{index:04d}.png").convert("RGB")
    size = (full.width * 2, full.height * 2)
    side_by_side(
        full.resize(size, Image.NEAREST), fast.resize(size, Image.NEAREST)
    ).save(here / "fast-decoder-frame.png", optimize=True)
    side_by_side(full.resize(size, Image.BICUBIC), up).save(
        here / "upscaled-frame.png", optimize=True
    )


if __name__ == "__main__":
    main()
