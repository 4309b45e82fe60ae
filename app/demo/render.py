"""Draw the frames of one demo video: a category's background and foreground painters, vectorised over time.

Every painter works on a whole clip at once, a (T, S, S, 3) uint8 array, so a 20 s clip takes
milliseconds. Each video draws its own phase, speed, positions, sizes and colour jitter from its seed,
so videos of one category differ while sharing a look that a tiny image model can learn from single
frames. `render_video` is the entry point.
"""

from __future__ import annotations

import numpy as np

from .vocab import SIGNATURES

FPS = 12
SIZE = 128


def render_video(category: str, n_frames: int, seed: int, size: int = SIZE) -> np.ndarray:
    """The (n_frames, size, size, 3) uint8 RGB frames of one video of `category`."""
    signature = SIGNATURES[category]
    rng = np.random.default_rng(seed)
    palette = np.clip(
        np.asarray(signature.palette, np.float32) + rng.normal(0, 10, (len(signature.palette), 3)), 0, 255
    )
    clip = _Clip(rng, n_frames, size, palette, signature.speed * rng.uniform(0.7, 1.3))
    frames = _BACKGROUNDS[signature.background](clip)
    _FOREGROUNDS[signature.foreground](clip, frames)
    return _add_grain(clip, frames)


class _Clip:
    """What every painter needs: randomness, time, size, colours, speed and pixel coordinates."""

    def __init__(self, rng: np.random.Generator, n_frames: int, size: int, palette: np.ndarray, speed: float):
        self.rng, self.size, self.palette, self.speed = rng, size, palette, speed
        self.t = np.arange(n_frames, dtype=np.float32) / FPS  # seconds, (T,)
        self.coords = np.arange(size, dtype=np.float32)  # pixel centres along x or y, (S,)

    def wave(self, amplitude: float, hz: float) -> np.ndarray:
        """A sine over time with a random phase, (T,)."""
        wave = amplitude * np.sin(2 * np.pi * hz * self.speed * self.t + self.rng.uniform(0, 2 * np.pi))
        return wave.astype(np.float32)

    def bounce(self, low: float, high: float, px_per_s: float) -> np.ndarray:
        """A position going back and forth between low and high at a random start, (T,)."""
        span = high - low
        travel = self.rng.uniform(0, 2 * span) + px_per_s * self.speed * self.t
        return (low + span - np.abs(travel % (2 * span) - span)).astype(np.float32)


# ---- shape masks, (T, S, S) bool; cx, cy and the like are (T,) arrays or scalars ----


def _ellipse(clip: _Clip, cx, cy, rx, ry) -> np.ndarray:
    dx2 = ((clip.coords[None, :] - _column(cx)) / np.float32(rx)) ** 2  # (T, S)
    dy2 = ((clip.coords[None, :] - _column(cy)) / np.float32(ry)) ** 2
    return dy2[:, :, None] + dx2[:, None, :] < 1.0


def _disc(clip: _Clip, cx, cy, r) -> np.ndarray:
    return _ellipse(clip, cx, cy, r, r)


def _rect(clip: _Clip, x0, x1, y0, y1) -> np.ndarray:
    x = clip.coords[None, :]
    inside_x = (x >= _column(x0)) & (x < _column(x1))
    inside_y = (x >= _column(y0)) & (x < _column(y1))
    return inside_y[:, :, None] & inside_x[:, None, :]


def _column(values) -> np.ndarray:
    """Per-frame values (or one scalar) as a float32 (T or 1, 1) column."""
    return np.reshape(np.asarray(values, np.float32), (-1, 1))


def _paint(frames: np.ndarray, mask: np.ndarray, color: np.ndarray | tuple[int, int, int]) -> None:
    frames[np.broadcast_to(mask, frames.shape[:3])] = np.asarray(color, np.uint8)


def _pan(image: np.ndarray, n_frames: int, size: int, dx, dy=0.0) -> np.ndarray:
    """Frames (T, size, size, ...) cut from a larger static (H, W, ...) image at per-frame offsets, wrapping."""
    dx = np.broadcast_to(np.asarray(dx), (n_frames,)).astype(np.int64) % image.shape[1]
    dy = np.broadcast_to(np.asarray(dy), (n_frames,)).astype(np.int64) % image.shape[0]
    wrapped = np.pad(image, ((0, size), (0, size)) + ((0, 0),) * (image.ndim - 2), mode="wrap")
    return np.stack([wrapped[y : y + size, x : x + size] for x, y in zip(dx, dy)])


def _gradient(clip: _Clip, top: np.ndarray, bottom: np.ndarray, width: int) -> np.ndarray:
    """A static (S, width, 3) vertical gradient."""
    w = (clip.coords / (clip.size - 1))[:, None, None]
    return np.broadcast_to((1 - w) * top + w * bottom, (clip.size, width, 3)).astype(np.float32)


def _shake(clip: _Clip, pixels: float) -> np.ndarray:
    return pixels + clip.wave(pixels, 0.3)


def _add_grain(clip: _Clip, frames: np.ndarray) -> np.ndarray:
    """Sensor-like noise from four cycled noise frames, a few levels deep."""
    amplitude = int(clip.rng.integers(3, 8))
    grain = clip.rng.integers(-amplitude, amplitude + 1, (4, clip.size, clip.size, 3), dtype=np.int16)
    noisy = frames.astype(np.int16)
    for k in range(4):
        noisy[k::4] += grain[k]
    return np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)


# ---- backgrounds: each returns (T, S, S, 3) uint8 ----


def _tiles(clip: _Clip) -> np.ndarray:
    """Kitchen wall tiles (palette 0, grout 1) above a wooden counter (1)."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    k = int(rng.integers(12, 20))
    y, x = np.mgrid[0 : s + 8, 0 : s + 8]
    image = np.where((((y // k) + (x // k)) % 2 == 0)[..., None], pal[0], pal[0] * 0.92)
    image[(y % k < 2) | (x % k < 2)] = pal[1] * 1.3
    image[y > int(s * rng.uniform(0.68, 0.76))] = pal[1]
    return _pan(np.clip(image, 0, 255).astype(np.uint8), len(clip.t), s, _shake(clip, 2), _shake(clip, 2))


def _field(clip: _Clip) -> np.ndarray:
    """Mowed grass in diagonal stripes (palette 0 and 1) with a white line (2), panning slowly."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    width = s * 3
    y, x = np.mgrid[0:s, 0:width]
    stripe = int(rng.integers(10, 18))
    image = np.where(((((y + rng.uniform(0.1, 0.5) * x) // stripe) % 2) == 0)[..., None], pal[0], pal[1])
    image = image * rng.uniform(0.93, 1.07, (s, width, 1))
    line_x = int(rng.integers(0, width))
    image[:, line_x : line_x + 2] = pal[2]
    return _pan(np.clip(image, 0, 255).astype(np.uint8), len(clip.t), s, clip.bounce(0, width - s, 6))


def _skyline(clip: _Clip) -> np.ndarray:
    """City buildings (palette 2-4) with lit windows (5) under an evening sky (0 to 1), panning."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    width = s * 3
    image = _gradient(clip, pal[0], pal[1], width).copy()
    y = np.arange(s)[:, None]
    ground = int(s * 0.82)
    x0 = 0
    while x0 < width:
        w, h = min(int(rng.integers(10, 26)), width - x0), int(rng.integers(25, 85))
        building = (y >= ground - h) & (y < ground)
        image[:, x0 : x0 + w][building[:, 0]] = pal[2 + int(rng.integers(3))]
        windows = ((y % 8) < 4) & building & (rng.random((s, 1)) < 0.8)
        cols = np.arange(w) % 6 < 3
        image[:, x0 : x0 + w][windows[:, 0][:, None] & cols[None, :]] = pal[5]
        x0 += w + int(rng.integers(0, 4))
    return _pan(image.astype(np.uint8), len(clip.t), s, 10 * clip.speed * clip.t + rng.uniform(0, width))


def _mountains(clip: _Clip) -> np.ndarray:
    """Mountain ridges (palette 2) with snow caps (4) over a meadow (3) under a blue sky (0 to 1)."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    width = s * 3
    image = _gradient(clip, pal[0], pal[1], width).copy()
    x = np.arange(width)
    ridge = np.zeros(width)
    for _ in range(int(rng.integers(4, 8))):
        peak, height, slope = rng.uniform(0, width), rng.uniform(35, 80), rng.uniform(0.6, 1.4)
        distance = np.minimum(np.abs(x - peak), width - np.abs(x - peak))
        ridge = np.maximum(ridge, height - slope * distance)
    top = s * 0.8 - ridge  # y of the ridge per column
    y = np.arange(s)[:, None]
    image[y >= top[None, :]] = pal[2]
    image[(y >= top[None, :]) & (y < top[None, :] + 7) & (ridge[None, :] > 50)] = pal[4]
    meadow = y >= s * 0.78 + 3 * np.sin(x / 9.0)[None, :]
    image[meadow] = pal[3]
    return _pan(image.astype(np.uint8), len(clip.t), s, 4 * clip.speed * clip.t + rng.uniform(0, width))


def _studio(clip: _Clip) -> np.ndarray:
    """A blue news studio (palette 0 to 1) with a wall of monitors (2)."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    image = _gradient(clip, pal[0], pal[1], s + 8).copy()
    cols, rows = int(rng.integers(3, 5)), 2
    cell = (s + 8) // cols
    for i in range(cols):
        for j in range(rows):
            x0, y0 = i * cell + 3, 6 + j * 26
            image[y0 : y0 + 22, x0 : x0 + cell - 6] = pal[2] * rng.uniform(0.8, 1.1)
    return _pan(np.clip(image, 0, 255).astype(np.uint8), len(clip.t), s, _shake(clip, 1.5), 0)


def _dark(clip: _Clip) -> np.ndarray:
    """A dark stage (palette 0) with a coloured spotlight (1) that sweeps and pulses to the beat."""
    s, pal = clip.size, clip.palette
    cx = clip.bounce(s * 0.2, s * 0.8, 25)
    two_sigma2 = np.float32(2 * (s * 0.28) ** 2)
    glow_x = np.exp(-((clip.coords[None, :] - cx[:, None]) ** 2) / two_sigma2)  # (T, S); the glow is separable
    glow_y = np.exp(-((clip.coords - np.float32(s * 0.3)) ** 2) / two_sigma2)
    pulse = 0.65 + 0.35 * np.abs(clip.wave(1, 1.0))
    light = glow_y[None, :, None] * (glow_x * pulse[:, None])[:, None, :]
    shades = (pal[0] + np.linspace(0, 1, 256)[:, None] * (pal[1] - pal[0])).astype(np.uint8)  # (256, 3)
    return shades[(light * 255).astype(np.uint8)]


def _dots(clip: _Clip) -> np.ndarray:
    """Pastel polka dots (palette 1 on 0) drifting diagonally."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    spacing = int(rng.integers(18, 28))
    period = spacing * (s // spacing + 2)
    y, x = np.mgrid[0:period, 0:period]
    radius = rng.uniform(4, 8)
    dots = ((y % spacing - spacing / 2) ** 2 + (x % spacing - spacing / 2) ** 2) < radius**2
    image = np.where(dots[..., None], pal[1], pal[0]).astype(np.uint8)
    drift = 8 * clip.speed * clip.t
    return _pan(image, len(clip.t), s, drift, drift * rng.uniform(0.3, 1.0))


def _pixels(clip: _Clip) -> np.ndarray:
    """Retro pixel blocks (palette 1-3 on a dark 0) with a ground row, scrolling sideways."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    block, width = 8, s * 3
    grid = rng.choice(4, size=(s // block, width // block), p=[0.55, 0.2, 0.15, 0.1])
    grid[-2:, :] = 1
    image = pal[:4][grid].repeat(block, 0).repeat(block, 1)
    image[np.arange(s) % block == 0] *= 0.5  # block seams
    image[:, np.arange(width) % block == 0] *= 0.5
    return _pan(image.astype(np.uint8), len(clip.t), s, 18 * clip.speed * clip.t + rng.uniform(0, width))


def _plain(clip: _Clip) -> np.ndarray:
    """A soft light backdrop (palette 0 to 1) with a table edge, as in product shots."""
    s, rng = clip.size, clip.rng
    image = _gradient(clip, clip.palette[0], clip.palette[1], s + 4).copy()
    image[int(s * rng.uniform(0.72, 0.8)) :] *= 0.85
    return _pan(image.astype(np.uint8), len(clip.t), s, _shake(clip, 1), 0)


def _planks(clip: _Clip) -> np.ndarray:
    """A gym floor of wooden planks (palette 0 and 1) with grain and a red mat (2)."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    y, x = np.mgrid[0 : s + 8, 0 : s + 8]
    height = int(rng.integers(9, 15))
    row = y // height
    image = np.where((row % 2 == 0)[..., None], pal[0], pal[1])
    image = image * (1 + 0.08 * np.sin(x / rng.uniform(2, 5) + row * 1.7))[..., None]
    image[y % height == 0] *= 0.6
    mat_top, mat_left = int(s * rng.uniform(0.45, 0.6)), int(s * rng.uniform(0.05, 0.2))
    image[mat_top:, mat_left : s + 8 - mat_left] = pal[2]
    return _pan(np.clip(image, 0, 255).astype(np.uint8), len(clip.t), s, _shake(clip, 2), _shake(clip, 2))


def _stars(clip: _Clip) -> np.ndarray:
    """A night sky (palette 0) with 2x2 px stars (1) of varied brightness, drifting slowly."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    size = s * 2
    image = np.broadcast_to(pal[0], (size, size, 3)).copy()
    n = int(rng.integers(80, 160))
    ys, xs = rng.integers(0, size - 1, n), rng.integers(0, size - 1, n)
    brightness = rng.uniform(0.5, 1.0, (n, 1))
    for dy in (0, 1):
        for dx in (0, 1):
            image[ys + dy, xs + dx] = pal[0] + brightness * (pal[1] - pal[0])
    drift = 3 * clip.speed * clip.t
    return _pan(image.astype(np.uint8), len(clip.t), s, drift + rng.uniform(0, size), drift * 0.5)


# ---- foregrounds: each paints into frames in place ----


def _pots(clip: _Clip, frames: np.ndarray) -> None:
    """One or two pots (palette 2) of soup (3) on the counter with steam (4) rising."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    n_pots = int(rng.integers(1, 3))
    for i in range(n_pots):
        r = rng.uniform(14, 22)
        cx = (i + 0.5) * s / n_pots + rng.uniform(-8, 8)
        cy = s * rng.uniform(0.66, 0.76)
        _paint(frames, _rect(clip, cx - r - 6, cx + r + 6, cy - 2, cy + 2), pal[2])  # handles
        _paint(frames, _ellipse(clip, cx, cy, r, r * 0.55), pal[2])
        wobble = clip.wave(1.5, 0.5)
        _paint(frames, _ellipse(clip, cx + wobble, cy, r * 0.78, r * 0.38), pal[3])
        puffs = np.zeros((s * 2, s), bool)
        lo, hi = int(max(cx - 12, 0)), int(min(cx + 12, s))
        puffs[:, lo:hi] = rng.random((s * 2, hi - lo)) < 0.03
        puffs |= np.roll(puffs, 1, 0) | np.roll(puffs, 1, 1)
        steam = _pan(puffs, len(clip.t), s, 0, 12 * clip.speed * clip.t)
        steam &= ((clip.coords >= cy - 45) & (clip.coords < cy - r * 0.5))[None, :, None]
        _paint(frames, steam, pal[4])


def _ball(clip: _Clip, frames: np.ndarray) -> None:
    """A small white ball (palette 2) with its shadow (3), rolling and bouncing across the field."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    r = rng.uniform(2.5, 4.0)
    x = clip.bounce(8, s - 8, rng.uniform(20, 45))
    ground = clip.bounce(s * 0.3, s * 0.9, rng.uniform(5, 15))
    height = np.abs(clip.wave(rng.uniform(0, 14), rng.uniform(0.3, 0.8)))
    _paint(frames, _ellipse(clip, x + 2, ground + 2, r * 1.2, r * 0.7), pal[3])
    _paint(frames, _disc(clip, x, ground - height, r), pal[2])


def _cars(clip: _Clip, frames: np.ndarray) -> None:
    """A road with dashed lane marks and small cars driving by in both directions."""
    s, rng = clip.size, clip.rng
    road_top = int(s * 0.82)
    frames[:, road_top:] = (60, 60, 66)
    dashes = ((clip.coords[None, :] + 30 * clip.speed * clip.t[:, None]) % 16) < 8  # (T, S)
    frames[:, road_top + 11 : road_top + 12][np.broadcast_to(dashes[:, None, :], (len(clip.t), 1, s))] = 235
    for _ in range(int(rng.integers(2, 5))):
        direction = rng.choice([-1, 1])
        x = (rng.uniform(0, s + 20) + direction * rng.uniform(15, 35) * clip.speed * clip.t) % (s + 20) - 14
        lane = road_top + (3 if direction > 0 else 14)
        _paint(frames, _rect(clip, x, x + 13, lane, lane + 6), rng.integers(30, 256, 3))


def _clouds(clip: _Clip, frames: np.ndarray) -> None:
    """Two to four white clouds (palette 4) drifting across the sky."""
    s, rng = clip.size, clip.rng
    for _ in range(int(rng.integers(2, 5))):
        x = (rng.uniform(0, s + 60) + rng.uniform(3, 8) * clip.speed * clip.t) % (s + 60) - 30
        _paint(
            frames, _ellipse(clip, x, rng.uniform(8, s * 0.3), rng.uniform(12, 22), rng.uniform(4, 8)), clip.palette[4]
        )


def _anchor(clip: _Clip, frames: np.ndarray) -> None:
    """A news anchor (skin 3, suit 4) over a red lower-third banner (5) with a scrolling ticker (6)."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    cx, head_r = s * rng.uniform(0.35, 0.65), rng.uniform(11, 15)
    head_y = s * 0.42 + clip.wave(1.0, 0.4)
    _paint(frames, _ellipse(clip, cx, s * 0.78, head_r * 2.2, s * 0.25), pal[4])
    _paint(frames, _ellipse(clip, cx, head_y, head_r * 0.85, head_r), pal[3])
    banner = int(s * 0.8)
    frames[:, banner : banner + 11] = pal[5].astype(np.uint8)
    frames[:, banner + 11 :] = pal[6].astype(np.uint8)
    letters = (clip.rng.random(s * 2) < 0.55) & (np.arange(s * 2) % 4 != 3)
    text = np.broadcast_to(letters, (s - banner - 15, s * 2))
    ticker = _pan(text, len(clip.t), s, 20 * clip.speed * clip.t)[:, : s - banner - 15]
    frames[:, banner + 13 : s - 2][ticker] = (30, 30, 40)


def _equalizer(clip: _Clip, frames: np.ndarray) -> None:
    """Neon equaliser bars (palette 2-4) jumping to the beat."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    n_bars = int(rng.integers(8, 15))
    bar_of_x = (clip.coords * n_bars / s).astype(int)
    gap = (clip.coords * n_bars / s) % 1 > 0.75
    rate = rng.uniform(0.8, 2.5, n_bars) * clip.speed
    phase = rng.uniform(0, 2 * np.pi, n_bars)
    heights = s * (0.15 + 0.55 * np.abs(np.sin(2 * np.pi * rate * clip.t[:, None] + phase)))  # (T, bars)
    height_of_x = heights[:, bar_of_x]  # (T, S)
    mask = (clip.coords[None, :, None] > s - height_of_x[:, None, :]) & ~gap[None, None, :]
    colors = pal[2:5][bar_of_x % 3].astype(np.uint8)  # (S, 3)
    np.copyto(frames, np.broadcast_to(colors, frames.shape), where=mask[..., None])


def _bouncers(clip: _Clip, frames: np.ndarray) -> None:
    """Big saturated balls (palette 2-5) bouncing around."""
    s, rng = clip.size, clip.rng
    for _ in range(int(rng.integers(3, 6))):
        r = rng.uniform(9, 18)
        x = clip.bounce(r, s - r, rng.uniform(15, 40))
        y = s - r - np.abs(clip.wave(rng.uniform(20, s - 2 * r), rng.uniform(0.4, 1.0)))
        _paint(frames, _disc(clip, x, y, r), clip.palette[2 + int(rng.integers(4))])


def _sprite(clip: _Clip, frames: np.ndarray) -> None:
    """A blocky hero (palette 4, visor 3) jumping above the ground blocks."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    x = s * rng.uniform(0.2, 0.6) + clip.wave(6, 0.2)
    y = s - 16 - 14 - np.abs(clip.wave(rng.uniform(15, 35), rng.uniform(0.5, 1.0)))
    _paint(frames, _rect(clip, x, x + 14, y, y + 14), pal[4])
    _paint(frames, _rect(clip, x + 7, x + 13, y + 3, y + 7), pal[3])


def _device(clip: _Clip, frames: np.ndarray) -> None:
    """A dark phone or tablet (palette 2) with a glowing screen (3) and a sweeping glare (4), sliding."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    w, h = rng.uniform(34, 60), rng.uniform(56, 80)
    cx = s / 2 + clip.wave(rng.uniform(10, 25), 0.15)
    cy = s * 0.48 + clip.wave(3, 0.2)
    _paint(frames, _ellipse(clip, cx, cy + h / 2 + 4, w * 0.6, 4), (120, 120, 130))
    _paint(frames, _rect(clip, cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2), pal[2])
    _paint(frames, _rect(clip, cx - w / 2 + 4, cx + w / 2 - 4, cy - h / 2 + 6, cy + h / 2 - 6), pal[3])
    glare_x = cx - w / 2 + (clip.t * 15 * clip.speed) % (w + 20) - 10
    _paint(frames, _rect(clip, glare_x, glare_x + 5, cy - h / 2 + 6, cy + h / 2 - 6), pal[4])


def _barbell(clip: _Clip, frames: np.ndarray) -> None:
    """A barbell (bar 3, plates 4) pumped up and down quickly."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    left, right = s * rng.uniform(0.08, 0.2), s * rng.uniform(0.8, 0.92)
    y = s * rng.uniform(0.4, 0.6) + clip.wave(rng.uniform(12, 28), rng.uniform(0.5, 0.9))
    _paint(frames, _rect(clip, left, right, y - 2, y + 2), pal[3])
    plate_h = rng.uniform(24, 36)
    for x in (left + 4, right - 12):
        _paint(frames, _rect(clip, x, x + 8, y - plate_h / 2, y + plate_h / 2), pal[4])


def _planet(clip: _Clip, frames: np.ndarray) -> None:
    """A planet (palette 2 or 3) with a shaded side and a ring (4), drifting along its orbit."""
    s, rng, pal = clip.size, clip.rng, clip.palette
    r = rng.uniform(18, 32)
    cx = s * rng.uniform(0.3, 0.7) + clip.wave(8, 0.05)
    cy = s * rng.uniform(0.35, 0.65) + clip.wave(4, 0.05)
    body = pal[2 + int(rng.integers(2))]
    ring = _ellipse(clip, cx, cy, r * 1.9, r * 0.5) & ~_ellipse(clip, cx, cy, r * 1.5, r * 0.32)
    _paint(frames, _disc(clip, cx, cy, r), body)
    _paint(frames, _disc(clip, cx, cy, r) & ~_disc(clip, cx - r * 0.35, cy - r * 0.35, r), body * 0.55)
    _paint(frames, ring & ~(_disc(clip, cx, cy, r) & (clip.coords[None, :, None] < np.reshape(cy, (-1, 1, 1)))), pal[4])


_BACKGROUNDS = {
    "tiles": _tiles,
    "field": _field,
    "skyline": _skyline,
    "mountains": _mountains,
    "studio": _studio,
    "dark": _dark,
    "dots": _dots,
    "pixels": _pixels,
    "plain": _plain,
    "planks": _planks,
    "stars": _stars,
}
_FOREGROUNDS = {
    "pots": _pots,
    "ball": _ball,
    "cars": _cars,
    "clouds": _clouds,
    "anchor": _anchor,
    "equalizer": _equalizer,
    "bouncers": _bouncers,
    "sprite": _sprite,
    "device": _device,
    "barbell": _barbell,
    "planet": _planet,
}
