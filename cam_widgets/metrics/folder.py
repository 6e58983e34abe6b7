"""Datasets for :func:`~cam_widgets.metrics.evaluate.evaluate`: an image folder with an optional
labels CSV, and the parsing of any map-style ``Dataset``'s items into (tensor, class, boxes)."""

from __future__ import annotations

import csv
import io
import math
import pathlib
import re

import torch
from torch.utils.data import Dataset

from ..data import load_image, resize_for_model
from ..data.files import open_regular, special_kind
from ..errors import CamWidgetsError, InvalidImageError, InvalidParameterError, Received, expected

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageFolderDataset(Dataset):
    """Images of a folder as the explainer's model sees them.

    Every file under ``root`` (recursively) with an image extension, sorted by relative path,
    or, with ``labels``, the images that the CSV lists. Each item is ``(tensor, index, path)``:
    the (3, H, W) float tensor from ``load_image`` + ``resize_for_model`` + the explainer's
    preprocess (exactly what :meth:`Explainer.prepare` gives), the item's index and its path
    relative to ``root`` (its id in the results).

    Args:
        root: the folder.
        explainer: gives the input size, the preprocess and the class names; the dataset
            keeps only those (it stays small and picklable for DataLoader workers, provided
            the preprocess is a module-level function, as the zoo's are).
        labels: optional CSV with rows ``path,class_id[,x0,y0,x1,y1]`` (a header row is
            allowed): ``path`` relative to ``root``, ``class_id`` an int or a class name, and a
            box in pixels of the original image (``x1``/``y1`` exclusive), scaled here to the
            model input size. Several rows for one path give several boxes (every instance
            of the class); their class ids must agree.
    """

    def __init__(self, root, explainer, labels=None) -> None:
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise InvalidParameterError(expected("root", "an existing folder", str(root)))
        self.input_size = tuple(explainer.spec.input_size)
        self.preprocess = explainer.spec.preprocess
        self._annotations: dict[str, dict] = {}
        if labels is None:
            self.paths = sorted(
                p.relative_to(self.root).as_posix()
                for p in self.root.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
        else:
            self._annotations = _read_labels(pathlib.Path(labels), self.root, explainer)
            self.paths = sorted(self._annotations)
        if not self.paths:
            raise InvalidParameterError(
                f"no image found in {str(self.root)!r} (extensions {', '.join(IMAGE_EXTENSIONS)})"
                + ("" if labels is None else f" listed by {str(labels)!r}")
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        rgb = resize_for_model(load_image(self.root / path), self.input_size)
        return self.preprocess(rgb).float(), index, path

    def image_id(self, index: int) -> str:
        """The id written in the results: the path relative to ``root``."""
        return self.paths[index]

    @property
    def has_labels(self) -> bool:
        return bool(self._annotations)

    def annotation(self, index: int) -> dict:
        """``dict(class_id, boxes)`` with boxes scaled to the model input size (or Nones)."""
        found = self._annotations.get(self.paths[index])
        if found is None:
            return dict(class_id=None, boxes=None)
        boxes = found["boxes"]
        if boxes:
            width, height = _image_size(self.root / self.paths[index])
            for x0, y0, x1, y1 in boxes:
                if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                    raise InvalidParameterError(
                        f"the box {(x0, y0, x1, y1)} of {self.paths[index]!r} lies outside the "
                        f"{width}x{height} image; boxes are x0,y0,x1,y1 in pixels of the image file"
                    )
            sy, sx = self.input_size[0] / height, self.input_size[1] / width
            boxes = [(x0 * sx, y0 * sy, x1 * sx, y1 * sy) for x0, y0, x1, y1 in boxes]
        return dict(class_id=found["class_id"], boxes=boxes or None)


#: First-row cells that make it a header: Excel's "CSV UTF-8" exports have one (after a BOM).
_HEADER_PATHS = ("path", "file", "filename", "file_name", "image", "image_path", "image_id", "name")
_HEADER_CLASSES = ("class", "class_id", "classid", "label", "label_id", "target")
_LABELS_HINT = "re-save it as UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)'; or iconv -f latin1 -t utf-8)"


def _read_labels(path: pathlib.Path, root: pathlib.Path, explainer) -> dict[str, dict]:
    """{relative path: dict(class_id, boxes)} of a labels CSV, read as UTF-8 (a BOM allowed).

    Every problem is one line naming the file and line: not a regular file, not UTF-8
    (latin-1 bytes, UTF-16), not comma-separated, a bad class, a box that is not four finite
    numbers with x1 > x0 and y1 > y0.
    """
    try:
        handle = open_regular(path, "the labels CSV", InvalidParameterError, "give a CSV file")
    except FileNotFoundError:
        raise InvalidParameterError(f"the labels CSV {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InvalidParameterError(
            f"the labels CSV {str(path)!r} cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
        ) from None
    with handle:
        if handle.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            raise InvalidParameterError(
                f"the labels CSV {str(path)!r} is UTF-16 text (Excel's 'Unicode Text'): expected "
                "UTF-8 with commas; hint: re-save it as 'CSV UTF-8 (Comma delimited)' (or "
                "iconv -f utf-16 -t utf-8)"
            )
        handle.seek(0)
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)  # an unclosed quote is an error, not a field
        found: dict[str, dict] = {}
        first = True
        try:
            for row in reader:
                number = reader.line_num
                row = [c.strip() for c in row]
                if not row or not row[0] or row[0].startswith("#"):
                    continue
                header = (
                    first
                    and len(row) >= 2
                    and (row[0].lower() in _HEADER_PATHS or row[1].lower() in _HEADER_CLASSES)
                )
                first = False
                if not header:
                    _label_row(row, f"{path.name} line {number}", root, explainer, found)
        except UnicodeDecodeError:
            line, byte = _first_bad_utf8(path)
            raise InvalidParameterError(
                f"{path.name} line {line} is not UTF-8 text (byte 0x{byte:02x}; latin-1 or a "
                f"Windows code page?): expected a UTF-8 CSV; hint: {_LABELS_HINT}"
            ) from None
        except csv.Error as exc:
            raise InvalidParameterError(
                f"{path.name} line {reader.line_num + 1} is not CSV ({exc}): expected rows "
                "'path,class_id[,x0,y0,x1,y1]'"
            ) from None
    return found


def _label_row(row: list[str], where: str, root: pathlib.Path, explainer, found: dict) -> None:
    """Add one labels row ``path,class_id[,x0,y0,x1,y1]`` to ``found`` (checked)."""
    if len(row) not in (2, 6):
        other = next((sep for sep in (";", "\t", "|") if sep in row[0]), None)
        hint = f"the fields look separated by {other!r}: use commas" if len(row) == 1 and other else ""
        raise InvalidParameterError(
            expected(
                f"labels row ({where})",
                "'path,class_id' or 'path,class_id,x0,y0,x1,y1'",
                Received(f"{len(row)} fields"),
                hint,
            )
        )
    rel = pathlib.Path(row[0])
    rel = rel.relative_to(root) if rel.is_absolute() and root in rel.parents else rel
    image = root / rel
    kind = special_kind(image)
    if kind is not None:
        raise InvalidParameterError(
            expected(f"image ({where})", "an image file", Received(f"{row[0]!r}, which is {kind}"))
        )
    if not image.is_file():
        raise InvalidParameterError(f"{where}: image {row[0]!r} not found under {str(root)!r}")
    given = int(row[1]) if re.fullmatch(r"[+-]?[0-9]+", row[1]) else row[1]
    try:
        class_id = explainer.resolve_class(given)
    except CamWidgetsError as exc:
        raise InvalidParameterError(f"{where}: {exc}") from None
    entry = found.setdefault(rel.as_posix(), dict(class_id=class_id, boxes=[]))
    if entry["class_id"] != class_id:
        raise InvalidParameterError(
            expected(
                f"class ({where})",
                f"class {entry['class_id']}, which {row[0]!r} already has",
                Received(f"class {class_id}"),
            )
        )
    if len(row) == 6:
        try:
            box = tuple(float(v) for v in row[2:])
        except ValueError:
            raise InvalidParameterError(
                expected(f"box ({where})", "numbers x0,y0,x1,y1", Received(str(row[2:])))
            ) from None
        if not all(math.isfinite(v) for v in box):
            raise InvalidParameterError(
                expected(f"box ({where})", "finite numbers of pixels", Received(str(row[2:])))
            )
        if not (box[2] > box[0] and box[3] > box[1]):
            raise InvalidParameterError(expected(f"box ({where})", "x1 > x0 and y1 > y0", Received(str(box))))
        entry["boxes"].append(box)


def _first_bad_utf8(path: pathlib.Path) -> tuple[int, int]:
    """(line number, byte) of the first byte of ``path`` that is not UTF-8."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, line[exc.start]
    return 1, 0


def _image_size(path) -> tuple[int, int]:
    """(width, height) of an image file after its EXIF orientation (header only)."""
    from PIL import Image, UnidentifiedImageError

    try:  # never blocks: a FIFO put in the file's place is refused
        with (
            open_regular(path, "Image path", InvalidImageError, "give an image file") as handle,
            Image.open(handle) as img,
        ):
            width, height = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):
                width, height = height, width
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        if isinstance(exc, CamWidgetsError):
            raise
        raise InvalidImageError(
            f"the size of {str(path)!r} could not be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:100]}): expected an image file"
        ) from None
    return width, height


class IndexedDataset(Dataset):
    """(index, image, class id, boxes, error) for each index of a dataset (runs in the workers)."""

    def __init__(self, dataset, record_errors: bool) -> None:
        self.dataset = dataset
        self.record_errors = record_errors

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            item = self.dataset[index]
        except CamWidgetsError as exc:
            if not self.record_errors:
                raise
            return index, None, None, None, f"{type(exc).__name__}: {exc}"
        annotate = getattr(self.dataset, "annotation", None)
        image, class_id, boxes = _parse_item(item, annotate(index) if callable(annotate) else None)
        return index, image, class_id, boxes, None


def collate(rows):
    """Picklable collate (runs in the workers): [indices, (M, 3, H, W) batch of the M readable
    images or None, class ids, boxes, errors], so that pin_memory pins the whole batch."""
    indices, images, class_ids, boxes, errors = (list(c) for c in zip(*rows))
    good = [im for im in images if im is not None]
    shapes = {tuple(im.shape) for im in good}
    if len(shapes) > 1:
        raise InvalidImageError(
            f"the dataset gave images of different shapes {sorted(shapes)} in one batch; every "
            "image must be preprocessed to the model input size (3, H, W)"
        )
    batch = torch.stack(good).float() if good else None
    return [indices, batch, class_ids, boxes, errors]


def _parse_item(item, annotation: dict | None) -> tuple[torch.Tensor, int | None, list | None]:
    """(image tensor, class id or None, boxes or None) from one dataset item.

    Items may be ``(tensor, index, path)`` (ImageFolderDataset), ``(tensor, label)``,
    ``(tensor, label, box)``, a tensor, or a dict with ``image`` and optional ``class_id``
    (or ``label``) and ``box``/``boxes``; a dataset's ``annotation(index)`` wins.
    """
    class_id, boxes = None, None
    if isinstance(item, dict):
        image = item.get("image")
        class_id = item.get("class_id", item.get("label"))
        boxes = item.get("boxes", item.get("box"))
    elif isinstance(item, (tuple, list)) and item:
        image = item[0]
        if len(item) >= 2 and not (len(item) == 3 and isinstance(item[2], str)):
            class_id = item[1]
            boxes = item[2] if len(item) >= 3 else None
    else:
        image = item
    if annotation is not None:
        class_id, boxes = annotation.get("class_id"), annotation.get("boxes")
    if isinstance(class_id, torch.Tensor):
        class_id = int(class_id.item()) if class_id.numel() == 1 else None
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.tolist()
    if boxes is not None and len(boxes) == 4 and all(isinstance(v, (int, float)) for v in boxes):
        boxes = [tuple(boxes)]
    if not isinstance(image, torch.Tensor):
        raise InvalidImageError(
            expected(
                "dataset item",
                "a preprocessed (3, H, W) tensor first",
                image,
                "use ImageFolderDataset or apply the explainer's preprocess in the dataset",
            )
        )
    return image, None if class_id is None else int(class_id), boxes or None
