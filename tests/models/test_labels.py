"""Class look-up: ids, numeric strings, names, errors, search."""

import numpy as np
import pytest

from cam_widgets.errors import CamWidgetsError, InvalidParameterError, UnknownClassError
from cam_widgets.models.labels import imagenet_labels, resolve_class, search_classes

LABELS = imagenet_labels()


def test_imagenet_labels():
    assert len(LABELS) == 1000
    assert LABELS[242] == "boxer"
    assert LABELS[282] == "tiger cat"
    assert LABELS[285] == "Egyptian cat"
    LABELS_COPY = imagenet_labels()
    LABELS_COPY[0] = "changed"
    assert imagenet_labels()[0] != "changed"


@pytest.mark.parametrize(
    "query, expected",
    [
        (242, 242),
        (np.int64(282), 282),
        (np.uint8(7), 7),
        ("242", 242),
        (" 285 ", 285),
        ("boxer", 242),
        ("tiger cat", 282),
        ("TIGER CAT", 282),
        ("Egyptian cat", 285),
        ("egyptian", 285),
        ("espresso", 967),
        (0, 0),
        (999, 999),
    ],
)
def test_resolve_ok(query, expected):
    assert resolve_class(query, LABELS) == expected


@pytest.mark.parametrize("query", [1000, -1, "1000", "-3", np.int32(5000)])
def test_resolve_out_of_range(query):
    with pytest.raises(UnknownClassError) as info:
        resolve_class(query, LABELS)
    msg = str(info.value)
    assert "0..999" in msg and "out of range" in msg
    assert "\n" not in msg


def test_resolve_unknown_name_has_close_matches():
    with pytest.raises(UnknownClassError) as info:
        resolve_class("tigr cat", LABELS)
    msg = str(info.value)
    assert "Unknown class name" in msg and "'tiger cat'" in msg and "Did you mean" in msg
    assert not msg.startswith('"')  # not KeyError-quoted


def test_resolve_unknown_name_without_matches():
    with pytest.raises(UnknownClassError, match="Unknown class name 'qqqqzzzz'"):
        resolve_class("qqqqzzzz", LABELS)


def test_resolve_ambiguous_lists_candidates():
    with pytest.raises(UnknownClassError) as info:
        resolve_class("cat", LABELS)
    msg = str(info.value)
    assert "Ambiguous" in msg and "matches" in msg
    assert msg.count("(") <= 5 + 2  # at most 5 candidates listed
    assert "more" in msg


@pytest.mark.parametrize("query", [True, False, np.bool_(True), 3.0, np.float32(2.0), None, [1], ""])
def test_resolve_bad_types(query):
    with pytest.raises(InvalidParameterError) as info:
        resolve_class(query, LABELS)
    assert "expected a class id such as 282 or a class name" in str(info.value)
    assert isinstance(info.value, CamWidgetsError)


def test_resolve_generic_labels():
    labels = ["background", "Widget", "gadget", "widget pro"]
    assert resolve_class("widget", labels) == 1  # exact (case-insensitive) wins over substring
    assert resolve_class("pro", labels) == 3
    assert resolve_class("3", labels) == 3
    with pytest.raises(UnknownClassError, match=r"0\.\.3"):
        resolve_class(4, labels)
    with pytest.raises(UnknownClassError, match="Ambiguous"):
        resolve_class(" dget", ["gadget", "fidget"])


def test_resolve_duplicate_exact_names():
    with pytest.raises(UnknownClassError, match="Ambiguous"):
        resolve_class("crane", ["crane", "crane", "heron"])


def test_bad_labels():
    with pytest.raises(InvalidParameterError, match="labels"):
        resolve_class(1, [])
    with pytest.raises(InvalidParameterError, match="labels"):
        resolve_class(1, "abc")


def test_search_classes():
    hits = search_classes("cat", LABELS)
    assert len(hits) == 10
    names = [name for _, name in hits]
    assert all(isinstance(i, int) for i, _ in hits)
    assert "tiger cat" in names and "Egyptian cat" in names
    # substring matches come before fuzzy ones
    assert all("cat" in n.lower() for n in names[:5])
    assert search_classes("tiger cat", LABELS)[0] == (282, "tiger cat")
    assert search_classes("espreso", LABELS)[0] == (967, "espresso")  # fuzzy
    assert search_classes("242", LABELS)[0] == (242, "boxer")
    assert search_classes(242, LABELS)[0] == (242, "boxer")
    assert search_classes("", LABELS) == []
    assert len(search_classes("a", LABELS, limit=3)) == 3


def test_search_bad_params():
    with pytest.raises(InvalidParameterError, match="limit"):
        search_classes("cat", LABELS, limit=0)
    with pytest.raises(InvalidParameterError, match="query"):
        search_classes(None, LABELS)


def test_search_finds_a_typo_in_one_word():
    """Whole-name difflib finds 'crate' for 'catt'; word by word finds the cats."""
    names = [name for _, name in search_classes("catt", LABELS)]
    assert set(names[:4]) == {"tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert [n for n, _ in search_classes("egyptan", LABELS)][:1] == [285]
    assert search_classes("tigr", LABELS)[0] == (292, "tiger")
    assert search_classes("zzzz", LABELS) == []


def test_unknown_name_suggests_by_word():
    with pytest.raises(UnknownClassError) as info:
        resolve_class("catt", LABELS)
    msg = str(info.value)
    assert "Did you mean 'tiger cat' (282)" in msg and "'Egyptian cat' (285)" in msg
    assert "crate" not in msg and "\n" not in msg
    with pytest.raises(UnknownClassError, match=r"Did you mean 'espresso' \(967\)"):
        resolve_class("espreso", LABELS)


@pytest.mark.parametrize(
    "query, expected",
    [
        (
            "tigr cat",
            "Unknown class name 'tigr cat': expected one of the 1000 class names or a class"
            " id in 0..999. Did you mean 'tiger cat' (282), ",
        ),
        (
            99999,
            "Class 99999 is out of range: expected a class id in 0..999 (1000 classes). Hint: type"
            " part of a name, e.g. 'cat', and pick from the matches.",
        ),
        (
            "qqqqzzzz",
            "Unknown class name 'qqqqzzzz': expected one of the 1000 class names or a class"
            " id in 0..999. Hint: type part of a name, e.g. 'cat', and pick from the matches.",
        ),
        ("cat", "Ambiguous class name 'cat': it matches 8 classes, 'oystercatcher' (143), "),
    ],
)
def test_errors_read_as_plain_words(query, expected):
    """Shown in the widgets' status line: no "that is a str", no Python call in the hint."""
    with pytest.raises(CamWidgetsError) as info:
        resolve_class(query, LABELS)
    msg = str(info.value)
    assert msg.startswith(expected) and "\n" not in msg
    assert "that is a" not in msg and "search_classes" not in msg


def test_the_shipped_imagenet_names_are_torchvisions_public_ones():
    from torchvision.models import ResNet18_Weights, VGG16_Weights

    from cam_widgets.models import imagenet_labels

    assert imagenet_labels() == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert imagenet_labels() == VGG16_Weights.IMAGENET1K_V1.meta["categories"]


def test_the_offline_model_imports_no_torchvision():
    import subprocess
    import sys

    code = (
        "import sys, cam_widgets as cw, cam_widgets.widgets; "
        "cw.get_explainer('efficientnet_lite0').explain('chelsea'); "
        "print('torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_the_zoo_knows_its_weight_files_without_torchvision():
    from cam_widgets.models.torchvision_zoo import expected_weights_file
    from cam_widgets.models.zoo import ZOO_WEIGHT_FILES

    assert {name: expected_weights_file(name).name for name in ZOO_WEIGHT_FILES} == ZOO_WEIGHT_FILES


def test_the_widgets_import_no_torchvision_for_the_offline_model():
    import subprocess
    import sys

    code = (
        "import sys; from cam_widgets.widgets import Explorer, Compare; "
        "e = Explorer(); c = Compare(); e.close(); c.close(); print('torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1:] == ["False"], done.stderr[-2000:]
