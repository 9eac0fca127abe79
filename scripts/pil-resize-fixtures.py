#!/usr/bin/python3
"""
Writes test/fixtures/pil-resize.json: what Pillow's own BICUBIC resize gives for generated images, as the
SHA-256 of its 8-bit output, for src/image/resample.ts to match bit for bit (run with Debian's
/usr/bin/python3, which sees python3-pil; the pyenv python3 on PATH does not):

    apt-get install python3-pil && /usr/bin/python3 scripts/pil-resize-fixtures.py

Each case is an RGB noise image from the same 32-bit LCG as test/support/noise.ts, resized
with Image.resize((w, h), Image.BICUBIC) and centre-cropped with floor offsets (CLIP's preprocessing).
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


# (width, height, resize-to or None for a 224 shortest edge, seed)
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
]

cases = []
for width, height, resize_to, seed in CASES:
    out_w, out_h = resize_to if resize_to else shortest_edge(width, height, 224)
    img = noise(width, height, seed).resize((out_w, out_h), Image.BICUBIC)
    left, top = (out_w - 224) // 2, (out_h - 224) // 2
    crop = img.crop((left, top, left + 224, top + 224))
    cases.append(
        {
            "width": width,
            "height": height,
            "seed": seed,
            "resized": [out_w, out_h],
            "window": [left, top, 224, 224],
            "sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
        }
    )

with open(OUT, "w") as f:
    json.dump({"source": f"Pillow {PIL.__version__} Image.resize(BICUBIC) via scripts/pil-resize-fixtures.py", "cases": cases}, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT}")
