"""The sidebar's inputs for your own data and model: an image folder, a torchvision architecture and a
teacher checkpoint (streamlit AppTest). Bad input gives the engine's message on the page, never a
traceback, and Run stays disabled; good input builds the configuration the CLI would.

No run is computed here: ``runs.start`` is replaced by a recorder, so pressing Run shows the exact
configurations the page would start (AppTest runs the page in this process).
"""
import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from apptest import APP, widget
from deadwood import RunConfig, with_updates
from deadwood.models.registry import build_model
from app import runs, widgets

CLASSES = ("red", "green", "blue")


def make_folder(top, per_class=6, size=12):
    """``top/<class>/<i>.png``: one tree (split by the seed), each class a noisy shade of its own channel."""
    rng = np.random.default_rng(0)
    for channel, name in enumerate(CLASSES):
        (top / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            pixels[..., channel] = 200 + i
            Image.fromarray(pixels).save(top / name / f"{i}.png")
    return top


@pytest.fixture
def started(monkeypatch):
    """The configurations each press of Run would start, recorded instead of run."""
    calls = []

    def record(slot, configs, sweep=False):
        calls.append(tuple(configs))

    monkeypatch.setattr(runs, "start", record)
    return calls


def open_app(**values):
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in values.items():  # in order: a widget may appear only after the one before it
        widget(at, key).set_value(value)
        at.run()
    return at


def refused(at, *phrases):
    """The page says why it cannot run (every phrase in one message), without a traceback, and Run is
    disabled (AppTest refuses to click it, as a browser would)."""
    assert not at.exception, at.exception
    messages = [e.value for e in at.error]
    assert any(all(p in m for p in phrases) for m in messages), messages
    assert "Traceback" not in " ".join(messages)
    assert at.button(key="run").disabled


def test_folder_asks_for_its_path_then_names_a_missing_one(tmp_path):
    at = open_app(dataset="folder")
    assert widget(at, "image_size").value == RunConfig().image_size  # shown only for a folder
    refused(at, "Image folder", "ImageFolder layout")
    assert not any("--data-dir" in e.value for e in at.error)  # the app's words, not the CLI's
    widget(at, "image_folder").set_value(str(tmp_path / "nowhere")).run()
    refused(at, str(tmp_path / "nowhere"), "does not exist")
    widget(at, "dataset").set_value("digits").run()
    with pytest.raises(KeyError):
        widget(at, "image_folder")
    assert not at.error and not at.button(key="run").disabled


@pytest.mark.parametrize("damage, phrases", [
    ("one class", ("at least two class folders",)),
    ("empty class", ("blue", "holds no images")),
    ("unreadable image", ("could not be read", "3.png")),
    ("a file", ("is not a folder",)),
])
def test_a_folder_the_engine_cannot_read_gives_its_message(tmp_path, damage, phrases):
    top = make_folder(tmp_path / "images")
    if damage == "one class":
        for name in CLASSES[1:]:
            for f in (top / name).iterdir():
                f.unlink()
            (top / name).rmdir()
    elif damage == "empty class":
        for f in (top / "blue").iterdir():
            f.unlink()
    elif damage == "unreadable image":
        (top / "green" / "3.png").write_bytes(b"not a png")
    else:
        top = top / "red" / "0.png"
    at = open_app(dataset="folder", image_folder=str(top), image_size=16)
    refused(at, *phrases)


def test_folder_and_torchvision_model_build_the_run_config(tmp_path, started):
    top = make_folder(tmp_path / "images")
    at = open_app(dataset="folder", image_folder=str(top), image_size=16, model=widgets.TORCHVISION_ENTRY)
    assert widget(at, "torchvision_model").value == "resnet18"  # the default architecture
    widget(at, "torchvision_model").set_value("shufflenet_v2_x0_5").run()
    assert not at.exception and not at.error
    at.button(key="run").click().run()
    assert not at.exception
    (config,), = started
    assert config == RunConfig(dataset="folder", data_dir=str(top), image_size=16,
                               model="torchvision:shufflenet_v2_x0_5")
    assert config.data_info().classes == tuple(sorted(CLASSES)) and config.data_info().input_shape == (3, 16, 16)


def test_a_torchvision_model_that_does_not_fit_is_refused():
    at = open_app(model=widgets.TORCHVISION_ENTRY, torchvision_model="squeezenet1_1")  # on digits: 8x8
    refused(at, "squeezenet1_1")


def test_a_checkpoint_that_is_missing_or_for_another_model_is_refused(tmp_path):
    at = open_app(teacher_checkpoint=str(tmp_path / "teacher.pt"))
    refused(at, str(tmp_path / "teacher.pt"), "does not exist")
    other = tmp_path / "moons-mlp.pt"  # the default is the MLP on digits; these are weights for 2 inputs
    torch.save(build_model("mlp", RunConfig(dataset="moons").data_info()).state_dict(), other)
    widget(at, "teacher_checkpoint").set_value(str(other)).run()
    refused(at, str(other), "does not fit")


def test_a_fitting_checkpoint_starts_the_teacher_without_training(tmp_path, started):
    path = tmp_path / "teacher.pt"
    torch.save(build_model("mlp", RunConfig().data_info()).state_dict(), path)
    at = open_app(teacher_checkpoint=str(path))
    assert not at.exception and not at.error
    at.button(key="run").click().run()
    widget(at, "teacher_epochs").set_value(3).run()  # a changed value is the user's choice
    at.button(key="run").click().run()
    (first,), (second,) = started
    assert first == with_updates(RunConfig(teacher_checkpoint=str(path)), **{"teacher.epochs": 0})
    assert second.teacher.epochs == 3 and second.teacher_checkpoint == str(path)


def test_profile_samples_reach_the_run_from_advanced(started):
    """A large network's profile costs more than its solve: the sidebar can switch it off."""
    at = open_app(profile_samples=0)
    assert not at.exception and not at.error
    at.button(key="run").click().run()
    (config,), = started
    assert config == with_updates(RunConfig(), **{"deadwooding.profile_samples": 0})
