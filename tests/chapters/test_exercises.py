from cam_widgets.exercises import check


def test_check_feedback(capsys):
    assert check("id", 282, 282)
    assert not check("id", 281, 282, hint="tiger cat")
    assert check("ratio", 255.9, 256, tolerance=0.5)
    assert not check("ratio", float("nan"), 256, tolerance=0.5)
    assert check("name", " Tiger Cat", "tiger cat")
    assert check("pred", 7, lambda a: a > 5)
    assert not check("todo", ..., 1)
    out = capsys.readouterr().out
    assert "Hint: tiger cat" in out and "replace ... with your answer" in out


def test_an_app_page_says_where_exercises_can_be_answered(capsys, monkeypatch):
    """Voila shows the cells read-only: "replace ..." asked for what the page does not allow."""
    for name in ("VOILA_BASE_URL", "VOILA_KERNEL_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOILA_KERNEL_ID", "k")
    assert not check("todo", ..., 1)
    out = capsys.readouterr().out
    assert "open this notebook in JupyterLab" in out and "replace" not in out
