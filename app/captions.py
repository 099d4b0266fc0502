"""Captions that say how to read the solve's charts, each linked to the walkthrough's step that
tells it (the link carries the view's settings: :func:`app.links.href`)."""
from __future__ import annotations

import streamlit as st

from . import links


def step_link(step: int, text: str) -> str:
    """A Markdown link to walkthrough step ``step`` carrying this view's settings."""
    return f"[{text}]({links.href('walkthrough', step=step)})"


def multipliers_caption() -> None:
    st.caption("Each λ rises while its constraint is violated (g > 0) and stops once it holds. λ still rising, "
               "with constraints violated at the last epoch, means the solve traded some of the teacher's "
               "robustness for sparsity; the fine-tune wins it back "
               f"({step_link(3, 'walkthrough, step 3')}, {step_link(5, 'step 5')}). The solve does not depend on "
               "κ: this chart is the same at every κ.")


def epsilon_caption(epsilon: float) -> None:
    st.caption(f"ε = {epsilon:g} is the run's training and evaluation budget: the teacher, the solve and the "
               "fine-tune all train against it, so changing ε trains a different teacher (the dense teacher at "
               f"ε 0.2 is not the one at ε 0.1). {step_link(1, 'Walkthrough, step 1')}.")


def shared_work_caption(records) -> None:
    """Under Compare's table: which run trained the teacher and which computed a solve, and for how
    long (:func:`app.charts.shared_seconds`), since its seconds column leaves them out."""
    from .charts import shared_seconds

    parts = []
    for r in records:
        cfg, shared = r.config, shared_seconds(r)
        who = f"the {cfg['method']} run at κ = {cfg['sparsity']:g}"
        if "teacher" in shared:
            parts.append(f"the dense teacher, trained in {shared['teacher']:.1f} s by {who}")
        if "solve" in shared:
            parts.append(f"the {cfg['method']} solve (shared by every κ), {shared['solve']:.1f} s in {who}")
    where = "; ".join(parts) if parts else "none in these runs: they read the teacher and any solve from the cache"
    st.caption(f"Not in **seconds**, shared work: {where}.")


def start_banner(choice, ended: bool) -> None:
    """What Live pruning says before it has a run to show, for the state it is in: Run disabled by a
    problem (said above it), a run that ``ended`` stopped or failed (said above it, by
    :func:`app.runs.outcome`), or Run ready,
    with what a fresh run costs: seconds on an embedded dataset and a registry model, minutes on an
    image folder or a torchvision network, where the teacher trains first."""
    config = choice.config
    if choice.problem or config is None:
        st.info("**Run** is off until the problem above is fixed in the sidebar.", icon=":material/block:")
        return
    if ended:
        return  # the notice of the stop or the failure already says what happened
    from deadwood.data.datasets import FOLDER, dataset_info
    from deadwood.models.zoo import TORCHVISION

    big = config.model.startswith(TORCHVISION)
    if config.dataset != FOLDER and dataset_info(config.dataset).embedded and not big:
        st.info(f"Press **Run** in the sidebar. A fresh run on the embedded {config.dataset} takes seconds; "
                "repeating a configuration is instant.", icon=":material/play_circle:")
        return
    what = "a torchvision network" if big else f"the {config.dataset} images"
    st.info(f"Press **Run** in the sidebar. A fresh run on {what} trains its teacher first and can take minutes "
            "on a CPU; each stage shows its progress as it goes, and repeating a configuration is instant.",
            icon=":material/play_circle:")


def explorer_samples(pair: dict, record) -> str:
    """Where the explorer's clean accuracies come from, and whether they differ from the run's own
    evaluation (said only when they do, as the percentages are shown)."""
    from .formatting import percent_text

    n, own = pair["pruned"]["samples"], record.robustness.get("samples", "all the")
    here = {"pruned": pair["pruned"]["clean_accuracy"], "teacher": pair["teacher"]["clean_accuracy"]}
    there = {"pruned": record.clean_accuracy, "teacher": (record.teacher or {}).get("clean_accuracy")}
    same = all(there[k] is not None and percent_text(here[k]) == percent_text(there[k]) for k in here)
    if same:
        return (f"Measured on the {n} test samples attacked here (the same for both models); the clean accuracies "
                f"equal Live pruning's, from the run's own evaluation on {own} test samples "
                f"({percent_text(record.clean_accuracy)} for the pruned model there).")
    return (f"Measured on the {n} test samples attacked here (the same for both models), so the clean accuracies "
            f"differ from Live pruning's, which come from the run's own evaluation on {own} test samples: "
            f"{percent_text(record.clean_accuracy)} for the pruned model there.")


def regions_network(dataset: str, model: str, resolution: int) -> str:
    """Which network the linear-regions lens maps, and why it is the moons MLP whatever the sidebar says."""
    elsewhere = "" if (dataset, model) == ("moons", "mlp") else (
        f" The sidebar's {dataset}/{model} is not mapped: its inputs have too many dimensions to draw regions in; "
        "the sidebar's ε and Advanced settings apply to the moons run.")
    return ("Maps the `mlp` network trained on `moons`, dense and pruned: its inputs are points of the plane, so "
            "its linear regions (one on/off pattern of the ReLUs each) can be drawn where they lie." + elsewhere +
            " The map shows what pruning changed: region edges merged away (blue), new ones (orange), and where "
            f"the predicted class changed (red). Counted on a {resolution}² grid, so regions smaller than a grid "
            "cell are missed. Bound: Cai et al.'s bound with the ranks of the weights.")
