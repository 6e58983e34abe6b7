"""Colormaps for explanation maps, without matplotlib or OpenCV at run time.

The lookup tables (256 RGB entries each) are embedded:

* ``"viridis"`` (default) and ``"inferno"``: matplotlib's perceptually uniform maps,
  ``round(255 * cmap(i))`` for i = 0..255.
* ``"jet"``: exactly OpenCV's ``cv2.COLORMAP_JET`` (the classic MATLAB jet), because the
  Grad-CAM articles colour their heatmaps with ``cv2.applyColorMap(..., COLORMAP_JET)``.
  **BGR pitfall**: OpenCV returns BGR; code that passes that result straight to
  matplotlib/PIL shows red and blue swapped.  Everything here returns **RGB**.
  matplotlib's ``jet`` has the same endpoints ((0, 0, 128) at 0, (128, 0, 0) at 1) but a
  slightly different middle (up to 34/255 per channel).
* ``"gray"``: 0 -> black, 1 -> white.
* ``"RdBu"`` / ``"RdBu_r"``: matplotlib's diverging red-white-blue for signed maps
  (RdBu: low = red, high = blue; RdBu_r: low = blue, high = red).  Put 0 in the middle with a
  symmetric range, e.g. :func:`cam_widgets.render.normalize.shared_scale` (symmetric=True).

A value v in [0, 1] uses entry ``round(255 * v)``; NaN is drawn as 0.

Fades (:func:`fade_alpha`): how opaque an overlay's colour is at each value, so that the
photo shows through where the map is low instead of being tinted all over:

* ``"pixel"``: alpha proportional to the value (input-resolution gradient maps are mostly
  near zero; drawn opaque they cover the whole photo in the colormap's low colour).
* ``"cam"``: alpha rising from 0 at value 0 to 1 at :data:`CAM_FADE_FULL`, then 1: a class
  map looks as before where it is high and fades out where it is low.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..errors import InvalidParameterError, close_matches, expected

__all__ = [
    "apply_colormap",
    "list_colormaps",
    "colormap_lut",
    "plotly_colorscale",
    "DEFAULT_COLORMAP",
    "FADES",
    "CAM_FADE_FULL",
    "check_fade",
    "fade_alpha",
]

DEFAULT_COLORMAP = "viridis"
#: Fades an overlay may use (None: none, the colour equally opaque at every value).
FADES = ("cam", "pixel")
#: A "cam" fade is fully opaque from this value up: half the map's range keeps its look.
CAM_FADE_FULL = 0.5

_LUT_HEX = {
    "viridis": (
        "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769"
        "48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a"
        "472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85"
        "4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b"
        "3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d"
        "33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e"
        "2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e"
        "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d"
        "21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88"
        "1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81"
        "28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74"
        "3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863"
        "5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d"
        "84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32"
        "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a"
        "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725"
    ),
    "inferno": (
        "00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d09061f0a0722"
        "0b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48"
        "210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b0964"
        "3d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d"
        "57106e59106e5a116e5c126e5d126e5f136e61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e"
        "71196e721a6e741a6e751b6e771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a"
        "8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62"
        "a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557b93556ba3655"
        "bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545"
        "d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337e05536e15635e25734e35933"
        "e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711f"
        "f1731df2741cf3761bf37819f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0a"
        "f98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0f"
        "fcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932"
        "f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865"
        "f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96f8fb9af9fc9dfafda1fcffa4"
    ),
    "RdBu": (
        "67001f6a011f6d02207003207304217605217906227c07227f0823810823840924870a248a0b258d0c25900d26930e26"
        "960f279910279c11279f1228a21328a51429a81529ab162aae172ab1182bb3192cb41c2db61f2eb72230b82531ba2832"
        "bb2a34bd2d35be3036bf3338c13639c2383ac43b3cc53e3dc6413ec84440c94741cb4942cc4c44ce4f45cf5246d05548"
        "d25849d35a4ad55d4cd6604dd7634fd86551da6853db6b55dc6e57dd7059de735cdf765ee17860e27b62e37e64e48066"
        "e58368e6866ae8896ce98b6eea8e70eb9172ec9374ee9677ef9979f09c7bf19e7df2a17ff3a481f4a683f5a886f5aa89"
        "f5ac8bf6af8ef6b191f6b394f7b596f7b799f7b99cf8bb9ef8bda1f8bfa4f9c2a7f9c4a9f9c6acfac8affacab1fbccb4"
        "fbceb7fbd0b9fcd3bcfcd5bffcd7c2fdd9c4fddbc7fddcc9fdddcbfcdecdfcdfcffce0d0fce2d2fbe3d4fbe4d6fbe5d8"
        "fbe6dafae7dcfae8defae9dffaeae1f9ebe3f9ede5f9eee7f9efe9f9f0ebf8f1edf8f2eff8f3f0f8f4f2f7f5f4f7f6f6"
        "f6f7f7f5f6f7f3f5f6f2f5f6f0f4f6eff3f5edf2f5ecf2f5eaf1f5e9f0f4e7f0f4e6eff4e4eef4e3edf3e1edf3e0ecf3"
        "deebf2ddebf2dbeaf2dae9f2d8e9f1d7e8f1d5e7f1d4e6f1d2e6f0d1e5f0cfe4efcce2efcae1eec7e0edc5dfecc2ddec"
        "c0dcebbddbeabbdaeab8d8e9b6d7e8b3d6e8b1d5e7aed3e6acd2e5a9d1e5a7d0e4a5cee3a2cde3a0cce29dcbe19bc9e0"
        "98c8e096c7df93c6de90c4dd8dc2dc8ac0db87beda84bcd981bad87eb8d77bb6d678b4d575b2d471b0d36eaed26bacd1"
        "68abd065a9cf62a7ce5fa5cd5ca3cb59a1ca569fc9529dc84f9bc74c99c64997c54695c44393c34291c2408fc13f8ec0"
        "3e8cbf3c8abe3b88be3a87bd3885bc3783bb3681ba3480b9337eb8327cb7307ab62f79b52e77b52c75b42b73b32a71b2"
        "2870b1276eb0266caf246aae2369ad2267ac2065ab1f63a81e61a51d5fa21c5c9f1b5a9c1a5899195696185493175290"
        "15508d144e8a134c8712498411478110457e0f437b0e41790d3f760c3d730a3b7009386d08366a073467063264053061"
    ),
    "jet": (
        "00008000008400008800008c00009000009400009800009c0000a00000a40000a80000ac0000b00000b40000b80000bc"
        "0000c00000c40000c80000cc0000d00000d40000d80000dc0000e00000e40000e80000ec0000f00000f40000f80000fc"
        "0000ff0004ff0008ff000cff0010ff0014ff0018ff001cff0020ff0024ff0028ff002cff0030ff0034ff0038ff003cff"
        "0040ff0044ff0048ff004cff0050ff0054ff0058ff005cff0060ff0064ff0068ff006cff0070ff0074ff0078ff007cff"
        "0080ff0084ff0088ff008cff0090ff0094ff0098ff009cff00a0ff00a4ff00a8ff00acff00b0ff00b4ff00b8ff00bcff"
        "00c0ff00c4ff00c8ff00ccff00d0ff00d4ff00d8ff00dcff00e0ff00e4ff00e8ff00ecff00f0ff00f4ff00f8ff00fcff"
        "02fffe06fffa0afff60efff212ffee16ffea1affe61effe222ffde26ffda2affd62effd232ffce36ffca3affc63effc2"
        "42ffbe46ffba4affb64effb252ffae56ffaa5affa65effa262ff9e66ff9a6aff966eff9272ff8e76ff8a7aff867eff82"
        "82ff7e86ff7a8aff768eff7292ff6e96ff6a9aff669eff62a2ff5ea6ff5aaaff56aeff52b2ff4eb6ff4abaff46beff42"
        "c2ff3ec6ff3acaff36ceff32d2ff2ed6ff2adaff26deff22e2ff1ee6ff1aeaff16eeff12f2ff0ef6ff0afaff06feff01"
        "fffc00fff800fff400fff000ffec00ffe800ffe400ffe000ffdc00ffd800ffd400ffd000ffcc00ffc800ffc400ffc000"
        "ffbc00ffb800ffb400ffb000ffac00ffa800ffa400ffa000ff9c00ff9800ff9400ff9000ff8c00ff8800ff8400ff8000"
        "ff7c00ff7800ff7400ff7000ff6c00ff6800ff6400ff6000ff5c00ff5800ff5400ff5000ff4c00ff4800ff4400ff4000"
        "ff3c00ff3800ff3400ff3000ff2c00ff2800ff2400ff2000ff1c00ff1800ff1400ff1000ff0c00ff0800ff0400ff0000"
        "fc0000f80000f40000f00000ec0000e80000e40000e00000dc0000d80000d40000d00000cc0000c80000c40000c00000"
        "bc0000b80000b40000b00000ac0000a80000a40000a000009c00009800009400009000008c0000880000840000800000"
    ),
}


def _gray_lut() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


_NAMES = ("viridis", "jet", "inferno", "gray", "RdBu", "RdBu_r")


def list_colormaps() -> list[str]:
    """Names accepted by :func:`apply_colormap` and :func:`plotly_colorscale`."""
    return list(_NAMES)


def resolve_colormap(name: object) -> str:
    """The colormap's name as :func:`list_colormaps` spells it (any case; "grey" too)."""
    if isinstance(name, str):
        if name in _NAMES:
            return name
        lowered = {n.lower(): n for n in _NAMES}
        if name.lower() in lowered:
            return lowered[name.lower()]
        if name.lower() == "grey":
            return "gray"
    raise InvalidParameterError(
        expected(
            "colormap", f"one of {', '.join(repr(n) for n in _NAMES)}", name, close_matches(str(name), _NAMES)
        )
    )


@cache
def _lut(name: str) -> np.ndarray:
    if name == "gray":
        lut = _gray_lut()
    elif name == "RdBu_r":
        lut = _lut("RdBu")[::-1].copy()
    else:
        data = bytes.fromhex("".join(_LUT_HEX[name]))
        lut = np.frombuffer(data, dtype=np.uint8).reshape(256, 3).copy()
    lut.setflags(write=False)
    return lut


def colormap_lut(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The read-only (256, 3) uint8 RGB lookup table of a colormap."""
    return _lut(resolve_colormap(name))


def apply_colormap(map01: np.ndarray, name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """Colour a map with values in [0, 1] (H, W); returns RGB uint8 (H, W, 3).

    Values outside [0, 1] are clipped; NaN is drawn as 0.  Not BGR: see the module notes.
    """
    lut = colormap_lut(name)
    try:
        arr = np.asarray(map01, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(expected("map01", "a numeric (H, W) array", map01)) from None
    if arr.ndim != 2 or arr.size == 0:
        raise InvalidParameterError(expected("map01", "a non-empty (H, W) array", arr))
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    idx = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.intp)
    return lut[idx]


def check_fade(fade: object) -> str | None:
    """``fade`` if it is None or one of :data:`FADES`; a one-line error otherwise."""
    if fade is None or (isinstance(fade, str) and fade in FADES):
        return fade
    raise InvalidParameterError(
        expected(
            "fade",
            f"None or one of {', '.join(repr(f) for f in FADES)}",
            fade,
            close_matches(str(fade), FADES),
        )
    )


def fade_alpha(map01: np.ndarray, fade: str | None) -> np.ndarray:
    """Opacity in [0, 1] of the colour at each value of ``map01`` (see the module's notes):
    float64, same shape; ones for ``fade=None``; NaN counts as 0."""
    fade = check_fade(fade)
    v = np.clip(np.nan_to_num(np.asarray(map01, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if fade is None:
        return np.ones_like(v)
    if fade == "cam":
        return np.minimum(v / CAM_FADE_FULL, 1.0)
    return v


def plotly_colorscale(name: str = DEFAULT_COLORMAP, n_stops: int = 65, fade: str | None = None) -> list[list]:
    """The same colormap as a plotly colorscale ``[[0.0, "rgb(r,g,b)"], ..., [1.0, ...]]``.

    ``n_stops`` entries of the 256-entry table, evenly spaced (65 keeps jet's kinks and
    reproduces the smooth maps within a couple of levels). With ``fade`` the stops are
    ``"rgba(r,g,b,a)"``, ``a`` = :func:`fade_alpha` at the stop: plotly draws a heatmap's
    pixels with that alpha, times the trace's opacity, as :func:`~.overlay.overlay` blends.
    """
    lut = colormap_lut(name)
    if not isinstance(n_stops, (int, np.integer)) or not 2 <= n_stops <= 256:
        raise InvalidParameterError(expected("n_stops", "an int in [2, 256]", n_stops))
    check_fade(fade)
    idx = np.rint(np.linspace(0, 255, int(n_stops))).astype(int)
    if fade is None:
        return [[round(float(i) / 255.0, 6), "rgb({},{},{})".format(*(int(c) for c in lut[i]))] for i in idx]
    stops = idx / 255.0
    alpha = fade_alpha(stops, fade)
    return [
        [round(float(v), 6), "rgba({},{},{},{})".format(*(int(c) for c in lut[i]), round(float(a), 4))]
        for i, v, a in zip(idx, stops, alpha)
    ]
