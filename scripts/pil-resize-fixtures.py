#!/usr/bin/python3
"""
Writes test/fixtures/pil-resize.json: what Pillow's own BICUBIC and BILINEAR resizes give for generated
images, as the SHA-256 of their 8-bit output, for src/image/resample.ts to match bit for bit (run with Debian's
/usr/bin/python3, which sees python3-pil; the pyenv python3 on PATH does not):

    apt-get install python3-pil && /usr/bin/python3 scripts/pil-resize-fixtures.py

Each case is an RGB noise image from the same 32-bit LCG as test/support/noise.ts, resized
with Image.resize((w, h), filter) and centre-cropped with floor offsets (CLIP's preprocessing): BICUBIC
at 224 as CLIP's configs, BILINEAR at 256 as MobileCLIP-S0/S1/S2's (resample 2, shortest edge and crop 256).
"""
import hashlib
import json
import os

import PIL
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "pil-resize.json")


def noise(width, height, seed):
    x = seed
    raw = bytearray(width * height * 3)
    for i in range(len(raw)):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        raw[i] = x >> 24
    return Image.frombytes("RGB", (width, height), bytes(raw))


def shortest_edge(width, height, edge):
    """transformers' get_resize_output_image_size: the short side to edge, the long side truncated."""
    if width <= height:
        return edge, int(edge * height / width)
    return int(edge * width / height), edge


# (width, height, resize-to or None for a shortest edge of the crop size, seed[, filter, crop size])
CASES = [
    (1, 1, None, 1),
    (2, 3, None, 2),
    (223, 224, None, 3),
    (224, 223, None, 4),
    (10, 500, None, 5),
    (500, 10, None, 6),
    (222, 222, None, 7),  # 1.01×
    (5, 4, None, 8),  # 44.8× and 56×
    (32, 32, None, 9),
    (96, 64, None, 10),
    (300, 100, (224, 224), 11),  # SigLIP-style: one axis shrinks while the other grows
    (100, 300, (224, 224), 12),
    (400, 300, None, 13),  # shrinking on both axes
    (640, 480, None, 14, "bilinear", 256),  # shrinking 1.875×
    (1000, 300, None, 15, "bilinear", 256),  # shrinking one axis, the crop cutting the other
    (256, 300, None, 16, "bilinear", 256),  # one axis unchanged: PIL resamples only the other
    (100, 60, None, 17, "bilinear", 256),  # enlarging
    (5, 4, None, 18, "bilinear", 256),
    (300, 100, (224, 224), 19, "bilinear", 224),  # one axis shrinks while the other grows
]
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}

cases = []
for width, height, resize_to, seed, *rest in CASES:
    name, size = rest if rest else ("bicubic", 224)
    out_w, out_h = resize_to if resize_to else shortest_edge(width, height, size)
    img = noise(width, height, seed).resize((out_w, out_h), FILTERS[name])
    left, top = (out_w - size) // 2, (out_h - size) // 2
    crop = img.crop((left, top, left + size, top + size))
    case = {
        "width": width,
        "height": height,
        "seed": seed,
        "resized": [out_w, out_h],
        "window": [left, top, size, size],
        "sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
    }
    if name != "bicubic":
        case["filter"] = name
    cases.append(case)

with open(OUT, "w") as f:
    json.dump({"source": f"Pillow {PIL.__version__} Image.resize(BICUBIC or BILINEAR) via scripts/pil-resize-fixtures.py", "cases": cases}, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT}")
