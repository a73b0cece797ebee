"""Data augmentation on NCHW float batches, vectorised over the batch (no loop over images).

Every transform works on a whole (N, C, H, W) batch at once: random parameters are drawn as
length-N arrays and applied with broadcasting and index arithmetic. Each has a functional
form with explicit parameters (``hflip``, ``translate``, ``affine``, ``adjust_contrast``),
which the random versions call and the tests check exactly.

Random transforms (torchvision.transforms v1 names in brackets):

- ``RandomHorizontalFlip(p)``, ``RandomVerticalFlip(p)``       [same names]
- ``RandomTranslate(max_shift)``: integer shifts, zero fill     [RandomCrop(padding=k), roughly]
- ``RandomAffine(degrees, translate, scale, shear)`` and its one-parameter forms
  ``RandomRotation``, ``RandomScale``, ``RandomShear``: one inverse-mapped affine warp with
  bilinear sampling for the whole batch                          [RandomAffine, RandomRotation]
- ``RandomContrast(factor)``                                     [ColorJitter(contrast=...)]
- ``GaussianNoise(std)``                                         [v2.GaussianNoise]
- ``Compose([...], seed)``                                       [Compose]

Randomness: each transform owns a ``np.random.Generator`` (``seed=`` int or None); a
``Compose`` passes its own Generator to every member, so one seed fixes the whole pipeline.
Each random transform also takes ``p``, the probability that an image is transformed at all.
Inputs are never modified in place; outputs have the input's shape and dtype.

Geometry conventions: pixel (row i, column j) has coordinates x = j - (W-1)/2, y = i - (H-1)/2
(y points down, the origin is the image centre). A positive angle rotates the image
counter-clockwise as displayed (torchvision's convention); ``np.rot90(img)`` is a rotation by
+90 degrees. Pixels that map from outside the image get ``fill`` (0 by default).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Compose",
    "GaussianNoise",
    "RandomAffine",
    "RandomContrast",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomScale",
    "RandomShear",
    "RandomTranslate",
    "RandomVerticalFlip",
    "Transform",
    "adjust_contrast",
    "affine",
    "affine_matrices",
    "default_augmentation",
    "hflip",
    "translate",
    "vflip",
]


def _check_batch(x, name: str) -> np.ndarray:
    """x as an (N, C, H, W) floating ndarray, or a clear TypeError/ValueError."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: x must be a float32 (or other floating) NCHW batch, got dtype {x.dtype}")
    if x.ndim != 4:
        hint = " (one image? use x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{name}: x must be an (N, C, H, W) batch, got shape {x.shape}{hint}")
    return x


def _per_image(value, n: int, name: str) -> np.ndarray:
    """A scalar or length-n parameter as a float64 (n,) array."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per image ({n},), got shape {v.shape}")
    return v


# ----------------------------------------------------------------------------- functional forms


def hflip(x: np.ndarray) -> np.ndarray:
    """Mirrors every image left-right (a new array)."""
    return _check_batch(x, "hflip")[..., ::-1].copy()


def vflip(x: np.ndarray) -> np.ndarray:
    """Mirrors every image top-bottom (a new array)."""
    return _check_batch(x, "vflip")[..., ::-1, :].copy()


def translate(x: np.ndarray, dy, dx, fill: float = 0.0) -> np.ndarray:
    """Shifts each image by whole pixels: out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]].

    dy, dx: integers, scalar or one per image (positive = down / right). Pixels shifted in
    from outside the image are ``fill``. Exact (no interpolation).
    """
    x = _check_batch(x, "translate")
    n, _, h, w = x.shape
    dy = _per_image(dy, n, "translate: dy")
    dx = _per_image(dx, n, "translate: dx")
    if not (np.all(dy == np.round(dy)) and np.all(dx == np.round(dx))):
        raise ValueError("translate: dy and dx must be whole numbers of pixels (use affine() for sub-pixel shifts)")
    rows = np.arange(h)[None, :] - dy.astype(np.int64)[:, None]  # (N, H) source row of each output row
    cols = np.arange(w)[None, :] - dx.astype(np.int64)[:, None]  # (N, W) source column
    out = np.take_along_axis(x, np.clip(rows, 0, h - 1)[:, None, :, None], axis=2)
    out = np.take_along_axis(out, np.clip(cols, 0, w - 1)[:, None, None, :], axis=3)
    inside = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
    return np.where(inside, out, x.dtype.type(fill))


def affine_matrices(n: int, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=0.0):
    """Forward maps (A (N, 2, 2), t (N, 2)) in centred (x, y-down) pixel coordinates.

    A = R(angle) @ Shear(shear) @ scale * I: a point p goes to A p + t, where
    R(a) = [[cos a, sin a], [-sin a, cos a]] (counter-clockwise as displayed, y down) and
    Shear(s) = [[1, tan s], [0, 1]] (x' = x + tan(s) y). Angles in degrees; translate is
    (tx, ty) in pixels, each a scalar or one value per image.
    """
    a = np.deg2rad(_per_image(angle, n, "affine: angle"))
    s = _per_image(scale, n, "affine: scale")
    sh = np.tan(np.deg2rad(_per_image(shear, n, "affine: shear")))
    if np.any(s <= 0):
        raise ValueError("affine: scale must be > 0")
    cos, sin = np.cos(a), np.sin(a)
    # R @ Shear @ sI, written out: [[cos, cos*sh + sin], [-sin, -sin*sh + cos]] * s.
    A = np.empty((n, 2, 2))
    A[:, 0, 0] = cos * s
    A[:, 0, 1] = (cos * sh + sin) * s
    A[:, 1, 0] = -sin * s
    A[:, 1, 1] = (cos - sin * sh) * s
    t = np.stack([_per_image(translate[0], n, "affine: tx"), _per_image(translate[1], n, "affine: ty")], axis=1)
    return A, t


def affine(x: np.ndarray, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=0.0, fill: float = 0.0) -> np.ndarray:
    """Rotates, scales, shears and shifts every image in one warp with bilinear sampling.

    Parameters as in ``affine_matrices`` (each a scalar or one value per image). Each output
    pixel q is read from the input at A^-1 (q - t), interpolated bilinearly from its four
    neighbours; neighbours outside the image count as ``fill``. The identity parameters give
    back x exactly (the sample points fall on pixel centres with weight 1).
    torch equivalent: ``torchvision.transforms.functional.affine`` (bilinear).
    """
    x = _check_batch(x, "affine")
    n, c, h, w = x.shape
    A, t = affine_matrices(n, angle, translate, scale, shear)
    inv = np.linalg.inv(A)  # (N, 2, 2), batched
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    # Output pixel centres in centred coordinates, minus the translation: (N, 2, H*W).
    qy, qx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    q = np.stack([qx.ravel(), qy.ravel()])[None, :, :] - t[:, :, None]
    src = inv @ q  # (N, 2, H*W): source (x, y) of every output pixel
    sx, sy = src[:, 0] + cx, src[:, 1] + cy  # back to column / row indices
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    flat = x.reshape(n, c, h * w)
    out = np.zeros((n, c, h * w), dtype=x.dtype)
    outside = np.zeros((n, h * w))  # total weight of neighbours outside the image
    for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = (np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)).astype(np.int64)
        vals = np.take_along_axis(flat, idx[:, None, :], axis=2)  # (N, C, H*W)
        out += vals * np.where(ok, wgt, 0.0).astype(x.dtype)[:, None, :]
        outside += np.where(ok, 0.0, wgt)
    if fill != 0:
        out += (fill * outside).astype(x.dtype)[:, None, :]
    return out.reshape(n, c, h, w)


def adjust_contrast(x: np.ndarray, factor, clip=None) -> np.ndarray:
    """Scales each image's deviation from its own mean: out = m + factor * (x - m).

    m is the mean of the image over all its channels and pixels; factor 1 is the identity, 0
    a flat grey image at the mean, > 1 more contrast. ``clip=(lo, hi)`` clips the result
    (e.g. (0, 1) for images in [0, 1]). torch equivalent: ``adjust_contrast`` (which uses the
    grayscale mean and always clips to [0, 1]).
    """
    x = _check_batch(x, "adjust_contrast")
    f = _per_image(factor, len(x), "adjust_contrast: factor").astype(x.dtype)[:, None, None, None]
    m = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64).astype(x.dtype)
    out = f * x + (1 - f) * m  # written so that factor 1 gives x back exactly
    return out if clip is None else np.clip(out, clip[0], clip[1])


# ----------------------------------------------------------------------------- random transforms


def _range(value, name: str, symmetric_about: float = 0.0):
    """A number d as the interval (c - d, c + d) around symmetric_about; a pair as itself."""
    if np.ndim(value) == 0:
        d = float(value)
        if d < 0:
            raise ValueError(f"{name} must be >= 0 when a single number, got {value}")
        return symmetric_about - d, symmetric_about + d
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name}: range ({lo}, {hi}) has min > max")
    return lo, hi


class Transform:
    """Base class: ``t(x, rng=None)`` applies the transform to an NCHW batch.

    Args:
        p: probability that each image is transformed (the others pass unchanged).
        seed: int, None or np.random.Generator for this transform's own Generator; ``rng``
            passed to a call (as ``Compose`` does) is used instead.
    """

    def __init__(self, p: float = 1.0, seed=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = _check_batch(x, type(self).__name__)
        rng = self.rng if rng is None else rng
        # Drawn for every image even when p == 1, so the random stream does not depend on p.
        chosen = rng.random(len(x)) < self.p
        return self.apply(x, chosen, rng)

    def apply(self, x: np.ndarray, chosen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise TypeError(f"{type(self).__name__}: a Transform subclass defines apply(x, chosen, rng)")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "rng")
        return f"{type(self).__name__}({args})"


class RandomHorizontalFlip(Transform):
    """Mirrors each image left-right with probability p (torchvision ``RandomHorizontalFlip``)."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(p, seed)

    def apply(self, x, chosen, rng):
        return np.where(chosen[:, None, None, None], x[..., ::-1], x)


class RandomVerticalFlip(Transform):
    """Mirrors each image top-bottom with probability p (torchvision ``RandomVerticalFlip``)."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(p, seed)

    def apply(self, x, chosen, rng):
        return np.where(chosen[:, None, None, None], x[..., ::-1, :], x)


class RandomTranslate(Transform):
    """Shifts each image by whole pixels, dy, dx uniform in [-max_shift, max_shift], zero fill.

    max_shift: int, or (max_dy, max_dx). Exact, no interpolation. torch: roughly
    ``RandomCrop(size, padding=max_shift)``.
    """

    def __init__(self, max_shift=2, p: float = 1.0, fill: float = 0.0, seed=None):
        super().__init__(p, seed)
        my, mx = (max_shift, max_shift) if np.ndim(max_shift) == 0 else max_shift
        if int(my) != my or int(mx) != mx or my < 0 or mx < 0:
            raise ValueError(f"RandomTranslate: max_shift must be non-negative integers, got {max_shift!r}")
        self.max_shift = (int(my), int(mx))
        self.fill = fill

    def apply(self, x, chosen, rng):
        my, mx = self.max_shift
        dy = rng.integers(-my, my + 1, len(x)) * chosen
        dx = rng.integers(-mx, mx + 1, len(x)) * chosen
        return translate(x, dy, dx, fill=self.fill)


class RandomAffine(Transform):
    """A random rotation, translation, scaling and shear per image, in one bilinear warp.

    Args (torchvision ``RandomAffine`` semantics):
        degrees: d for an angle uniform in [-d, d], or (min, max). Positive = counter-clockwise.
        translate: None, or (fx, fy): shifts uniform in [-fx*W, fx*W] and [-fy*H, fy*H] pixels.
        scale: None, or (min, max): a factor drawn uniformly.
        shear: None, s for a shear angle uniform in [-s, s] degrees, or (min, max).
        p, fill, seed: see ``Transform`` and ``affine``.
    """

    def __init__(self, degrees=0.0, translate=None, scale=None, shear=None, p: float = 1.0, fill: float = 0.0,
                 seed=None):
        super().__init__(p, seed)
        self.degrees = _range(degrees, "degrees")
        self.translate = None if translate is None else tuple(float(v) for v in translate)
        if self.translate is not None and (len(self.translate) != 2 or min(self.translate) < 0):
            raise ValueError(f"translate must be (fx, fy) with fractions >= 0, got {translate!r}")
        self.scale = None if scale is None else _range(scale, "scale", 1.0)
        if self.scale is not None and self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.shear = None if shear is None else _range(shear, "shear")
        self.fill = fill

    def apply(self, x, chosen, rng):
        n, _, h, w = x.shape
        # Unchosen images get the identity parameters, which affine() reproduces exactly.
        angle = rng.uniform(*self.degrees, n) * chosen
        tx = ty = 0.0
        if self.translate is not None:
            tx = rng.uniform(-1, 1, n) * self.translate[0] * w * chosen
            ty = rng.uniform(-1, 1, n) * self.translate[1] * h * chosen
        scale = 1.0 if self.scale is None else np.where(chosen, rng.uniform(*self.scale, n), 1.0)
        shear = 0.0 if self.shear is None else rng.uniform(*self.shear, n) * chosen
        return affine(x, angle=angle, translate=(tx, ty), scale=scale, shear=shear, fill=self.fill)


class RandomRotation(RandomAffine):
    """Rotates each image by an angle uniform in [-degrees, degrees] (or (min, max)); bilinear.
    torchvision ``RandomRotation`` (with ``InterpolationMode.BILINEAR``)."""

    def __init__(self, degrees=10.0, p: float = 1.0, fill: float = 0.0, seed=None):
        super().__init__(degrees=degrees, p=p, fill=fill, seed=seed)


class RandomScale(RandomAffine):
    """Zooms each image about its centre by a factor uniform in ``scale`` = (min, max); bilinear.
    torchvision ``RandomAffine(0, scale=...)``."""

    def __init__(self, scale=(0.9, 1.1), p: float = 1.0, fill: float = 0.0, seed=None):
        super().__init__(scale=scale, p=p, fill=fill, seed=seed)


class RandomShear(RandomAffine):
    """Shears each image along x by an angle uniform in [-shear, shear] degrees; bilinear.
    torchvision ``RandomAffine(0, shear=...)``."""

    def __init__(self, shear=10.0, p: float = 1.0, fill: float = 0.0, seed=None):
        super().__init__(shear=shear, p=p, fill=fill, seed=seed)


class RandomContrast(Transform):
    """Multiplies each image's contrast by a factor uniform in ``factor`` (see ``adjust_contrast``).

    factor: d for [max(0, 1 - d), 1 + d] (torchvision ``ColorJitter(contrast=d)``), or (min, max).
    clip: None or (lo, hi) applied to the result.
    """

    def __init__(self, factor=0.2, p: float = 1.0, clip=None, seed=None):
        super().__init__(p, seed)
        lo, hi = _range(factor, "factor", 1.0)
        self.factor = (max(lo, 0.0), hi)
        self.clip = clip

    def apply(self, x, chosen, rng):
        f = np.where(chosen, rng.uniform(*self.factor, len(x)), 1.0)
        return adjust_contrast(x, f, clip=self.clip)


class GaussianNoise(Transform):
    """Adds independent N(0, std^2) noise to every pixel of the chosen images.

    clip: None or (lo, hi) applied to the result. torchvision ``v2.GaussianNoise(0, std, clip=False)``.
    """

    def __init__(self, std: float = 0.05, p: float = 1.0, clip=None, seed=None):
        super().__init__(p, seed)
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std = float(std)
        self.clip = clip

    def apply(self, x, chosen, rng):
        noise = rng.standard_normal(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        out = x + (self.std * noise).astype(x.dtype) * chosen[:, None, None, None].astype(x.dtype)
        return out if self.clip is None else np.clip(out, self.clip[0], self.clip[1])


class Compose:
    """Applies transforms in order, all drawing from one Generator (torchvision ``Compose``).

    Args:
        transforms: list of callables ``t(x, rng)`` (the ``Transform`` classes above).
        seed: int, None or np.random.Generator; the same seed gives the same augmented batches.
    """

    def __init__(self, transforms, seed=None):
        self.transforms = list(transforms)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.rng if rng is None else rng
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def default_augmentation(seed=None, flip: bool = True, max_shift: int = 2) -> Compose:
    """The light augmentation ``fastlayers train --augment`` uses for 28x28 images:
    a random horizontal flip (unless ``flip=False``, e.g. for digits) and a random shift of up
    to ``max_shift`` pixels."""
    transforms = [RandomHorizontalFlip()] if flip else []
    return Compose(transforms + [RandomTranslate(max_shift)], seed=seed)
