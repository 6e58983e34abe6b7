"""A picture that says what it shows: its title above it and a 0..1 colour bar beside it, in
pixels (pillow only), for PNG exports that go on a slide or into a report without the figure.
"""

from __future__ import annotations

import math

import numpy as np

from .colormaps import DEFAULT_COLORMAP, colormap_lut
from .overlay import check_rgb
from .titles import title_lines

#: Pictures narrower and shorter than this are enlarged (whole factors) so the text beside them
#: stays legible: a 224-pixel model input becomes 448 pixels.
MIN_PICTURE_SIDE = 448
TEXT, BACKGROUND = (40, 40, 40), (255, 255, 255)
TICKS = (0.0, 0.5, 1.0)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):  # pillow < 10.1 or no FreeType: bitmap font
        return ImageFont.load_default()


def _enlarged(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape[:2]
    factor = math.ceil(MIN_PICTURE_SIDE / max(h, w))
    if factor <= 1:
        return picture
    from PIL import Image

    big = Image.fromarray(picture).resize((w * factor, h * factor), Image.BICUBIC)
    return np.asarray(big)


def annotated(
    picture: object, title: str, colormap: str = DEFAULT_COLORMAP, colorbar_title: str = ""
) -> np.ndarray:
    """``picture`` (RGB uint8, e.g. an overlay coloured with ``colormap``) with ``title`` above
    it, wrapped to its width, and the colour bar of ``colormap`` from 0 to 1 on its right, its
    title (e.g. "1 = 99th pct") along it. Returns RGB uint8; small pictures are enlarged."""
    from PIL import Image, ImageDraw

    photo = _enlarged(check_rgb(picture, "picture"))
    lut = colormap_lut(colormap)
    h, w = photo.shape[:2]
    size = max(12, round(max(h, w) / 32))
    font, small = _font(size), _font(max(10, size - 3))
    pad, gap, bar_w = size, size, max(12, size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(measure.textlength(f"{t:g}", font=small) for t in TICKS)
    side_w = gap + bar_w + 4 + int(label_w) + (size + 4 if colorbar_title else 0)
    lines = title_lines(title, lambda line: measure.textlength(line, font=font) <= w + side_w)
    line_h = round(size * 1.35)
    top = pad + line_h * len(lines) + size // 2
    canvas = Image.new("RGB", (pad + w + side_w + pad, top + h + pad), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((pad, pad + k * line_h), line, fill=TEXT, font=font)
    canvas.paste(Image.fromarray(photo), (pad, top))

    # the bar: 1 at the top, 0 at the bottom, as the figures draw it
    bar_x = pad + w + gap
    rows = lut[np.rint(np.linspace(255, 0, h)).astype(int)]
    canvas.paste(Image.fromarray(np.repeat(rows[:, None, :], bar_w, axis=1).astype(np.uint8)), (bar_x, top))
    draw.rectangle([bar_x - 1, top - 1, bar_x + bar_w, top + h], outline=TEXT)  # around it
    text_h = small.getbbox("0")[3]
    for t in TICKS:
        y = top + round((1 - t) * (h - 1))
        draw.line([bar_x + bar_w + 1, y, bar_x + bar_w + 3, y], fill=TEXT)
        ty = min(max(y - text_h // 2, top), top + h - text_h)
        draw.text((bar_x + bar_w + 5, ty), f"{t:g}", fill=TEXT, font=small)
    if colorbar_title:
        strip = Image.new(
            "RGB", (int(measure.textlength(colorbar_title, font=small)) + 2, size + 2), BACKGROUND
        )
        ImageDraw.Draw(strip).text((1, 1), colorbar_title, fill=TEXT, font=small)
        strip = strip.rotate(90, expand=True)
        x = bar_x + bar_w + 6 + int(label_w) + 2
        canvas.paste(strip, (x, top + max(0, (h - strip.height) // 2)))
    return np.asarray(canvas)
