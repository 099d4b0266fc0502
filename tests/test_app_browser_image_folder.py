"""Chromium runs Live pruning for real on a generated image folder with torchvision's mobilenet_v3_small
(54 prunable layers on 16x16 images): the sparsity profile shows its own progress, cut by cut; the
models, trained on noise, are at chance and the page says so; no legend's box overlaps a chart's title or
plot area; and a picture of each chart goes to the test's temporary folder for a person to look at
(nothing is committed).

The settings go in through the page's address, as a copied link carries them (every sidebar widget is
bound to it): the folder, the architecture and one epoch per stage under *Advanced*.

The same pictures for resnet18 at the app's defaults on an image folder of your own (minutes to tens of
minutes on a CPU), opt-in::

    DEADWOOD_SHOTS_FOLDER=DIR python -m pytest -s -p no:cacheprovider tests/test_app_browser_image_folder.py \\
        -k resnet18 --basetemp=/tmp/deadwood-shots
"""
import os
import re
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image

import deadwood
from apptest import assert_legends_clear, chart_boxes, serve, shoot_charts
from browsertest import chromium
from app.widgets import TORCHVISION_ENTRY
from deadwood.pruning.masks import prunable
from deadwood.pruning.sparsity_profile import profile_grid
from deadwood.stages import PROFILE

SHOTS_FOLDER = "DEADWOOD_SHOTS_FOLDER"  # an image folder: the opt-in resnet18 pictures at the defaults
SHOTS_TIMEOUT_S = 3 * 3600  # resnet18 at the defaults on a busy two-core CPU: tens of minutes
RUN_TIMEOUT_S = 600
# the one-epoch stages, named by the "Advanced" widgets' keys (the address holds them under these keys)
ONE_EPOCH = dict(teacher_epochs=1, dual_epochs=1, finetune_epochs=1, eval_steps=1, seed=61)
# the charts of a finished Deadwooding run on Live pruning, by the start of their titles
CHARTS = ("Lagrange multipliers", "Per-layer sparsity", "Robustness at", "Dead wood forming", "Sparsity profile")
# the profile's progress bar, as app.runs.follow writes it: "<label>: cut 3 of 46"
PROFILE_BAR = re.escape(f"{PROFILE.label}: {PROFILE.unit} ") + r"(\d+) of (\d+)"
_FIRST_MATCH = "pattern => { const m = document.body.innerText.match(new RegExp(pattern)); return m ? m[0] : null; }"


def noise_folder(top: Path, classes=3, per_class=10, size=16) -> Path:
    """``top/c<k>/<i>.png`` in torchvision's ImageFolder layout (split by the seed): uniform noise, so the
    labels carry nothing a network could learn and every model lands at chance."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (top / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(top / f"c{c}" / f"{i}.png")
    return top


def run_and_look(url: str, settings: dict, shots: Path, timeout_s: float) -> dict:
    """Open Live pruning at ``settings`` (the address), press Run and follow the run to its end in Chromium:
    the profile's bar as first seen, the page's text, the charts' boxes and the pictures, taken once every
    chart of :data:`CHARTS` is drawn."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 2600})
        page.goto(f"{url}/?{urlencode(settings)}")
        run = page.get_by_role("button", name="Run", exact=True)
        run.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert run.is_enabled(), page.inner_text("body")  # the folder is read and the model fits
        run.click()
        # the bar changes every half second; the browser looks at every animation frame
        bar = page.wait_for_function(_FIRST_MATCH, arg=PROFILE_BAR, timeout=timeout_s * 1000).json_value()
        for title in CHARTS:  # the whole run, its profile included, drawn once the job has ended
            page.locator(".js-plotly-plot").filter(has_text=title).first.wait_for(timeout=timeout_s * 1000)
        page.wait_for_timeout(2000)  # Plotly's last layout pass
        page.screenshot(path=str(shots / "live-page.png"), full_page=True)
        pictures = shoot_charts(page, shots)
        return dict(bar=bar, body=page.inner_text("body"), charts=chart_boxes(page), pictures=pictures)


def test_a_folder_run_shows_the_profiles_progress_warns_of_chance_and_keeps_legends_clear(tmp_path):
    folder = noise_folder(tmp_path / "noise")
    arch = "mobilenet_v3_small"
    settings = dict(dataset="folder", image_folder=str(folder), image_size=16, model=TORCHVISION_ENTRY,
                    torchvision_model=arch, **ONE_EPOCH)
    config = deadwood.RunConfig(dataset="folder", data_dir=str(folder), image_size=16, model=f"torchvision:{arch}")
    net = deadwood.build_model(config.model, config.data_info())
    cuts = len(profile_grid(config, {n: w.numel() for n, w in prunable(net).items()}))
    with serve(tmp_path / "cache", tmp_path / "streamlit.log") as url:
        seen = run_and_look(url, settings, tmp_path / "charts", RUN_TIMEOUT_S)
    print(f"\nseen: {seen['bar']!r}; chart pictures: {tmp_path / 'charts'}")

    done, total = map(int, re.search(PROFILE_BAR, seen["bar"]).groups())  # the profile's own bar, cut by cut
    assert total == cuts and 0 <= done <= total, seen["bar"]
    body = seen["body"]
    assert re.search(r"Time per stage: .*sparsity profile \d+\.\d s", body)  # the record's timings["profile"]
    assert "The dense teacher's clean accuracy" in body and "at chance level" in body
    assert "pts vs teacher" not in body  # no change against a teacher that guesses
    titles = [c["title"] for c in seen["charts"]]
    assert all(any(t.startswith(want) for t in titles) for want in CHARTS), titles
    assert len(seen["pictures"]) == len(seen["charts"]) and all(p.stat().st_size > 10_000 for p in seen["pictures"])
    assert_legends_clear(seen["charts"])
    assert "Traceback" not in body


@pytest.mark.skipif(not os.environ.get(SHOTS_FOLDER), reason=f"opt-in: {SHOTS_FOLDER}=<an image folder> takes "
                    "resnet18's chart pictures at the app's defaults")
def test_resnet18_at_the_defaults_on_your_folder(tmp_path):
    folder = Path(os.environ[SHOTS_FOLDER]).expanduser().resolve()
    settings = dict(dataset="folder", image_folder=str(folder), model=TORCHVISION_ENTRY, torchvision_model="resnet18")
    with serve(tmp_path / "cache", tmp_path / "streamlit.log") as url:
        seen = run_and_look(url, settings, tmp_path / "charts", SHOTS_TIMEOUT_S)
    print(f"\nchart pictures: {tmp_path / 'charts'}")
    assert re.search(PROFILE_BAR, seen["bar"])
    assert_legends_clear(seen["charts"])
    assert "Traceback" not in seen["body"]
