"""Command line: ``cam-widgets explain | models | layers | classes | methods | samples | evaluate | fetch-weights``.

Errors print one line on stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import (
    CamWidgetsError,
    InvalidParameterError,
    UnknownClassError,
    close_matches,
    expected,
    one_line,
)

#: What ``Explanation.save`` writes.
OUTPUT_SUFFIXES = (".png", ".npy", ".html")
_WEIGHTS_HELP = (
    "state-dict file to load instead of the usual weights (offline machines: "
    "the file `fetch-weights` downloads elsewhere)"
)


class _OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line (argparse prints the whole usage block before it)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="cam-widgets", description=__doc__.splitlines()[0])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"cam-widgets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    explain = sub.add_parser("explain", help="explain an image and write .png / .npy / .html")
    explain.add_argument("image", help="a path, URL or bundled sample name (see 'samples')")
    explain.add_argument("--model", default="efficientnet_lite0")
    explain.add_argument("--method", default="gradcam")
    explain.add_argument(
        "--class", dest="target", default=None, help="class id or name (default: the top prediction)"
    )
    explain.add_argument("--layer", default=None)
    explain.add_argument("--weights", default=None, metavar="PATH", help=_WEIGHTS_HELP)
    explain.add_argument("--noise", type=float, default=None, help="SmoothGrad noise (e.g. 0.2)")
    explain.add_argument("--samples", type=int, default=None, help="SmoothGrad samples (e.g. 100)")
    # methods.smoothgrad.PRECISIONS, spelled out: importing it here would load torch for --help
    explain.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="SmoothGrad batches in mixed precision (fp16: CUDA only)",
    )
    explain.add_argument("--colormap", default="viridis")
    explain.add_argument("--alpha", type=float, default=0.5)
    explain.add_argument(
        "--annotated", action="store_true", help=".png with the title above it and the colour bar beside it"
    )
    explain.add_argument("--device", default=None)
    explain.add_argument(
        "--out", action="append", required=True, help=".png overlay, .npy map or .html view (repeatable)"
    )
    sub.add_parser("models", help="list the zoo")
    layers = sub.add_parser("layers", help="list a model's spatial layers")
    layers.add_argument("model")
    layers.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="check that this state-dict file loads; not needed: layers do not "
        "depend on the weights, which are random without it",
    )
    classes = sub.add_parser("classes", help="search ImageNet class names and ids")
    classes.add_argument("query")
    sub.add_parser("methods", help="list the methods")
    sub.add_parser("samples", help="list bundled images and scenes")
    sub.add_parser(
        "evaluate",
        add_help=False,
        help="score methods over an image folder (resumable; works under torchrun); "
        "see 'cam-widgets evaluate --help'",
    )
    fetch = sub.add_parser("fetch-weights", help="download torchvision weights (connected machine)")
    fetch.add_argument("model")
    return parser


def _output_error(text: str, why: str, exc: OSError | None = None) -> InvalidParameterError:
    reason = f" ({type(exc).__name__}: {exc.strerror or exc})" if exc is not None else ""
    return InvalidParameterError(
        f"Cannot write output {text!r}: expected a writable file path ending in "
        f"{', '.join(OUTPUT_SUFFIXES[:-1])} or {OUTPUT_SUFFIXES[-1]}, received a path where {why}"
        f"{reason}; hint: pick another --out path."
    )


def _prepare_outputs(paths: Sequence[str]) -> list[Path]:
    """Check every ``--out`` before the (possibly long) computation: a regular file or none
    yet (not a folder, a FIFO, a device), in a folder that takes a new file (a probe file is
    created and removed; nothing is read); create missing folders."""
    from .data.files import probe_folder, special_kind

    checked = []
    for text in paths:
        path = Path(text).expanduser()
        if path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise _output_error(
                text, f"the extension is {path.suffix!r}" if path.suffix else "the file name has no extension"
            )
        try:
            kind = special_kind(path)
            if kind is not None:
                raise _output_error(text, f"{str(path)!r} is {kind}, not a file")
            blocker = next((p for p in path.parents if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                raise _output_error(
                    text,
                    f"{str(blocker)!r} is a file, not a folder",
                    NotADirectoryError(20, "Not a directory"),
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _output_error(text, f"the folder {str(path.parent)!r} cannot be created", exc) from None
        try:
            probe_folder(path.parent, path.name)
        except OSError as exc:
            raise _output_error(text, f"{str(path)!r} cannot be written", exc) from None
        checked.append(path)
    return checked


def _check_image_argument(text: str) -> None:
    """Refuse, before any model is built, an image argument that cannot be one: a malformed
    URL, or an existing path that is not a regular file (a FIFO would block the read)."""
    from .data.fetch import check_url
    from .data.files import check_regular
    from .data.named import bundled_name
    from .errors import InvalidImageError

    if text.strip().lower().startswith(("http://", "https://")):
        check_url(text.strip())
    elif bundled_name(text) is None and os.path.exists(text):
        check_regular(text, "Image path", InvalidImageError, "give an image file")


def _explain(args) -> None:
    from .api import explain

    _check_image_argument(args.image)
    outputs = _prepare_outputs(args.out)
    if args.layer is not None:
        from .methods import get_method

        spec = get_method(args.method)
        if not spec.needs_layer:  # the API ignores it (widgets keep one layer for every method)
            raise InvalidParameterError(
                f"--layer: {spec.title} reads no layer (it explains the input pixels); "
                f"drop --layer, or pick a method that reads one, e.g. gradcam"
            )
    model = args.model
    if args.weights is not None:
        from .explainer import Explainer

        model = Explainer(args.model, device=args.device, weights_path=args.weights)
    target = int(args.target) if args.target is not None and args.target.isdigit() else args.target
    result = explain(
        args.image,
        model=model,
        method=args.method,
        target=target,
        layer=args.layer,
        device=args.device,
        noise=args.noise,
        samples=args.samples,
        precision=args.precision,
    )
    from .data.files import atomic_path

    for text, path in zip(args.out, outputs):
        # written beside it, renamed over it when complete: a failed write keeps the old file
        with atomic_path(path, fail=lambda why, exc, text=text: _output_error(text, why, exc)) as tmp:
            result.save(tmp, alpha=args.alpha, colormap=args.colormap, annotated=args.annotated)
        print(f"wrote {path}")
    print(json.dumps(result.summary()))
    if result.flagged:
        print(f"note: {result.status.message}", file=sys.stderr)


def _run(args) -> None:
    if args.command == "explain":
        _explain(args)
    elif args.command == "models":
        from .models import list_models

        for name, text in list_models().items():
            print(f"{name:20s} {text}")
    elif args.command == "layers":
        _layers(args)
    elif args.command == "classes":
        _classes(args.query)
    elif args.command == "methods":
        from .methods import list_methods

        for spec in list_methods():
            print(f"{spec.name:22s} {spec.title:22s} {spec.reference}")
    elif args.command == "samples":
        from .data import list_samples, list_scenes

        print("images: " + ", ".join(list_samples()))
        print("scenes: " + ", ".join(list_scenes()))
    elif args.command == "fetch-weights":
        from .models.torchvision_zoo import fetch_weights

        print(f"wrote {fetch_weights(args.model)}")


def _layers(args) -> None:
    """Layer names and resolutions do not depend on the weights: without ``--weights`` the
    architecture is built with random weights, so listing needs no weight file (nothing
    printed here describes the weights)."""
    from .explainer import Explainer
    from .models import load_model

    spec = load_model(args.model, pretrained=args.weights is not None, weights_path=args.weights)
    explainer = Explainer(spec)
    for info in explainer.layers():
        mark = "  (default)" if info.name == explainer.default_layer else ""
        print(f"{info.name:32s} {info.kind:18s} {info.channels:5d} x {info.resolution}{mark}")


def _classes(query: str) -> None:
    from .models import imagenet_labels, search_classes

    labels = imagenet_labels()
    hits = search_classes(query, labels)
    if not hits:
        hint = close_matches(query, labels) or "search for part of a name, e.g. 'cat'"
        raise UnknownClassError(
            expected(
                "class",
                f"part of a class name or an id in 0..{len(labels) - 1}",
                query,
                hint,
                problem=f"no ImageNet class matches {query!r}",
            )
        )
    for class_id, label in hits:
        print(f"{class_id:4d}  {label}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe is an ignored exception
        return status
    except BrokenPipeError:  # piped into `head`, which stopped reading: a quiet exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is left goes there
        return 1


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["evaluate"]:  # every flag belongs to the evaluation's own parser
        from .metrics.distributed import main as evaluate_main

        try:
            return evaluate_main(argv[1:], prog="cam-widgets evaluate") or 0
        except CamWidgetsError as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except CamWidgetsError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
