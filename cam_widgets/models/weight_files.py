"""Weight files: where torchvision keeps them, whether a download can work, safe reading.

Used by :mod:`cam_widgets.models.torchvision_zoo` (and the dilated VGG16). Files are read with
``torch.load(..., weights_only=True)``, so no pickled code is ever executed; the connectivity
check is bounded in time, so an offline machine gets its error within seconds.
"""

from __future__ import annotations

import os
import pathlib
import re
import socket
import threading
import warnings
from urllib.parse import urlparse

import torch

from ..errors import WeightsUnavailableError

#: Environment variable that, set to 1/true/yes, forbids any download attempt.
OFFLINE_ENV = "CAM_WIDGETS_OFFLINE"
#: Seconds the connectivity check may take at most.
CONNECT_TIMEOUT_S = 3.0


def hub_checkpoint_dir() -> pathlib.Path:
    return pathlib.Path(torch.hub.get_dir()) / "checkpoints"


def offline_by_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def host_reachable(url: str, timeout: float | None = None) -> bool:
    """True when a TCP connection to the URL's host opens within ``timeout`` seconds.

    Runs in a daemon thread so that a slow DNS lookup cannot exceed the bound either.
    """
    timeout = CONNECT_TIMEOUT_S if timeout is None else float(timeout)
    parsed = urlparse(url)
    host = parsed.hostname
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="cam-widgets-connectivity", daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    return bool(result and result[0])


def download_refusal(url: str, allow_download: bool | None, reachable=host_reachable) -> str:
    """Why the weights at ``url`` cannot be downloaded now, '' when they can be tried.

    ``allow_download``: see :func:`~cam_widgets.models.torchvision_zoo.build_torchvision`;
    ``reachable``: the connectivity check (callers pass their module's, which tests patch).
    """
    if allow_download is False:
        return "downloads are disabled: allow_download=False"
    if allow_download is None and offline_by_env():
        return f"downloads are disabled: {OFFLINE_ENV}=1"
    if allow_download is None and not reachable(url):
        return f"{urlparse(url).hostname} is unreachable: offline, checked within {CONNECT_TIMEOUT_S:g} s"
    return ""


def unavailable_message(key: str, dest: pathlib.Path, url: str, why: str) -> str:
    """One line, as short as it can be while it says what is missing, why, and every fix."""
    return (
        f"No {key} weights here: expected {dest} ({why}). Copy the file there "
        f"(`cam-widgets fetch-weights {key}` on a connected machine, or {url}), or pass "
        f"weights_path= (CLI: --weights PATH); pretrained=False gives random weights."
    )


def download_file(url: str, dest: pathlib.Path, progress: bool = True) -> pathlib.Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(dest.name)
    hash_prefix = match.group(1) if match else None
    torch.hub.download_url_to_file(url, str(dest), hash_prefix=hash_prefix, progress=progress)
    return dest


#: Lines of torch's ``weights_only`` refusal: the pickle asks for something other than tensors
#: (torch 2.4-2.5 "Unsupported global: GLOBAL x", torch >= 2.6 "Trying to load unsupported GLOBAL
#: posix.system whose module posix is blocked", "Trying to call reduce for unrecognized function",
#: "Can only build Tensor, Parameter, OrderedDict or types allowlisted ...").
_REFUSAL = re.compile(
    r"unsupported global|unrecognized function|can only (?:create new object|build)|"
    r"not an allowed global|is blocked",
    re.IGNORECASE,
)


def _refusal(text: str) -> str | None:
    """The line of a ``torch.load(weights_only=True)`` error that refuses pickled code, if any."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("WeightsUnpickler error:"):
            line = line.split(":", 1)[1].strip()
        if _REFUSAL.search(line):
            return re.split(r"\.(?:\s|$)", line, maxsplit=1)[0][:160]
    return None


def load_state_dict_file(
    path: os.PathLike | str, name: str | None = None, *, refetch: str | None = None
) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)``; never executes pickled code.

    ``name`` (the model's zoo name) only makes the error hints precise; ``refetch`` replaces
    the hint's "run `cam-widgets fetch-weights <name>`" for weights that come from elsewhere.
    """
    path = pathlib.Path(path)
    fetch = refetch or (
        f"run `cam-widgets fetch-weights {name}`" if name else "run `cam-widgets fetch-weights <model>`"
    )
    if not path.is_file():
        raise WeightsUnavailableError(
            f"Weights file not found: expected an existing .pth file, received {str(path)!r}; "
            f"hint: check the path given as weights_path= (CLI: --weights), or {fetch}."
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol.*", category=UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        refused = _refusal(text)
        if refused:
            raise WeightsUnavailableError(
                f"Weights file refused: expected a torch state dict of tensors only (read with "
                f"torch.load(weights_only=True)), received {str(path)!r} that contains pickled code, "
                f"not only tensors; nothing in it was run ({refused}); hint: do not load this file, "
                f"{fetch} to get the genuine weights, or pass another file (weights_path=, CLI --weights)."
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else ""
        if first.startswith("Weights only load failed"):
            found = re.search(r"WeightsUnpickler error: *\n*([^\n]*)", text)
            first = found.group(1).strip() if found and found.group(1).strip() else "not a torch checkpoint"
        detail = f"{type(exc).__name__}: {first[:120]}" if first else type(exc).__name__
        raise WeightsUnavailableError(
            f"Weights file could not be read safely: expected a torch state dict of tensors "
            f"(read with torch.load(weights_only=True)), received {str(path)!r} that is corrupt, "
            f"truncated or not a torch checkpoint ({detail}); "
            f"hint: delete it and {fetch} again, or pass another file (weights_path=, CLI --weights)."
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise WeightsUnavailableError(
            f"Weights file is not a state dict: expected a dict of parameter names to tensors, "
            f"received {str(path)!r} holding a {type(obj).__name__}; "
            f"hint: delete it and {fetch} again, or pass another file (weights_path=, CLI --weights)."
        )
    return obj


def mismatch_detail(exc: BaseException) -> str:
    """The telling lines of a failed ``load_state_dict`` (missing / unexpected keys, shapes),
    for a one-line error."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return ("; ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else ""))[:200]
