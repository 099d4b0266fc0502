"""The walkthrough's six steps: a few plain sentences, the formula where it helps, and one figure
drawn from the current settings' stored solve and run (:class:`Story`). One function per step,
listed in :data:`STEPS`; the page (``views/walkthrough.py``) picks one and draws it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

import deadwood
from deadwood.storage.record import RunRecord

from . import charts, replay_panel, runs, show
from .charts_profile import profile_figure
from .charts_walkthrough import constraints_figure, magnitude_histogram_figure, teacher_cost_figure


@dataclass(frozen=True)
class Story:
    """What the steps draw from: the settings, the stored solve (``solved``: its summary; ``cut``: it
    cut at κ, :func:`app.stored_solve.at`), the run at κ when there is one, and the other methods'
    runs at the same settings."""

    config: deadwood.RunConfig
    solved: dict | None
    cut: dict | None
    histograms: dict | None
    record: RunRecord | None
    baselines: dict
    busy: bool

    @property
    def profile(self) -> dict | None:
        return (self.solved or {}).get("profile") or (self.record.sparsity_profile if self.record else None)


def _needs_run(what: str) -> None:
    st.info(f"{what} needs the run at these settings: press **Run** in the sidebar (the stored solve is reused, "
            "so only the cut, the fine-tune and the evaluation compute).", icon=":material/play_circle:")


def teacher(s: Story) -> None:
    eps = s.config.epsilon
    st.markdown(f"Pruning starts from a trained network, the **dense teacher**. Here it is trained adversarially "
                f"at the run's budget ε = {eps:g}, so it resists small perturbations of its inputs to begin with. "
                "The usual way to prune is to cut the smallest weights of the trained network. The chart does "
                "exactly that to the teacher, at every κ, without any fine-tuning: accuracy holds for a while, "
                "then falls off a cliff, and robust accuracy falls first.")
    st.latex(r"\text{robust accuracy}(\varepsilon)=\Pr\big[f(x+\delta)=y\ \text{ for every }\ "
             r"\lVert\delta\rVert_\infty\le\varepsilon\big]")
    dense = None
    if s.record is not None and s.record.teacher:
        t = s.record.teacher
        rob = dict(zip(t.get("robustness", {}).get("epsilons", []), t.get("robustness", {}).get("accuracy", [])))
        dense = {"clean": t.get("clean_accuracy"), "robust": rob.get(eps)}
    if s.profile:
        show.figure(teacher_cost_figure(s.profile, dense), "walk-teacher")
        st.caption("Changing ε trains a different teacher: the one at ε 0.2 is not the one at ε 0.1.")


def problem(s: Story) -> None:
    st.markdown("Deadwooding does not cut the teacher's weights as they are. A copy of the teacher, the "
                "**student**, first looks for its own dead wood: it makes its weights small (the L1 objective) "
                "while constraints keep each layer's output, its predictions and its adversarial loss close to "
                "the teacher's. Each constraint gets a **Lagrange multiplier** λ that grows while it is violated.")
    st.latex(r"\min_W\ R(W)=\frac{1}{N}\sum_l \frac{\lVert W_l\rVert_1}{m_l}\quad\text{s.t.}\quad g_j(W)\le 0")
    st.latex(r"g_l=\frac{\mathbb{E}\lVert h^S_l(x)-h^T_l(x)\rVert^2}{\mathbb{E}\lVert h^T_l(x)\rVert^2}-\delta_{rep},"
             r"\quad g_{kd}=\mathbb{E}\,\mathrm{KL}\big(p_T^\tau\Vert p_S^\tau\big)-\delta_{kd},\quad "
             r"g_{rob}=\mathbb{E}\,\mathrm{CE}\big(S(x+a_\varepsilon),y\big)-(1+\rho)\,\mathbb{E}\,"
             r"\mathrm{CE}\big(T(x+a_\varepsilon),y\big)")
    st.latex(r"\mathcal{L}(W,\lambda)=R(W)+\sum_j\lambda_j\max(0,g_j(W)),\qquad"
             r"\lambda_j\leftarrow\max\!\big(0,\ \lambda_j+s\cdot\overline{\max(0,g_j)}\big)")
    if s.solved and charts.dual_entries(s.solved["history"]):
        show.figure(constraints_figure(s.solved["history"]), "walk-constraints")


def solve(s: Story) -> None:
    st.markdown("The solve alternates: gradient steps on the weights lower the Lagrangian, and every k steps each "
                "multiplier rises by its constraint's mean violation. **Play** replays it epoch by epoch (or "
                "**Step**, or move the slider): the multipliers and violations so far, how the weights' magnitudes "
                "spread out, and the masks that one cut at κ would make of the weights at that point.")
    replay_panel.draw(s.config, "walk", s.busy)
    st.caption("The stored solve keeps its weights at the end of every epoch (float16, 2 bytes a weight and epoch, "
               "for models up to a size limit; larger ones are replayed from the magnitude quantiles every solve "
               "records). The dead wood forms where the weights pile up left of θ(κ). λ still rising at the last "
               "epoch, with constraints violated, means the solve traded some robustness for sparsity: step 5 "
               "wins it back.")


def cut(s: Story) -> None:
    k = s.config.sparsity
    st.markdown(f"Then **one global cut**: a single threshold θ over |w| across all layers zeroes exactly the "
                f"fraction κ = {k:g} of the weights. Layers are not given a budget each; the solve decided which "
                "layers hold dead wood, and the threshold finds it wherever it is.")
    st.latex(r"\theta(\kappa)=\text{the }\operatorname{round}(\kappa N)\text{-th smallest }|w|\ \text{over all layers},"
             r"\qquad m_i=\mathbb{1}\big[|w_i|>\theta(\kappa)\big]")
    if s.cut is None or s.histograms is None:
        return
    left, right = st.columns(2)
    with left:
        show.figure(magnitude_histogram_figure(s.histograms, s.cut["threshold"], k), "walk-magnitudes")
    with right:
        show.figure(charts.layer_sparsity_figure(s.cut), "walk-layer-sparsity")
    st.caption("Before fine-tuning: the stored solve cut at this κ. Move κ in the sidebar: both redraw at once.")


def finetune(s: Story) -> None:
    st.markdown("The cut costs accuracy. A **fine-tune** under the fixed mask repairs it: the pruned student "
                "learns from the teacher's softened predictions (distillation) on adversarial inputs it makes "
                "for itself (adversarial training). Cut weights stay exactly zero.")
    st.latex(r"\alpha\,\tau^2\,\mathrm{KL}\big(p_T^\tau(x')\,\Vert\,p_S^\tau(x')\big)+(1-\alpha)\,"
             r"\mathrm{CE}\big(S(x'),y\big),\qquad x'=x+a_\varepsilon(x)")
    if s.record is None:
        _needs_run("The fine-tune at this κ")
        return
    show.figure(charts.training_figure(s.record.history), "walk-training")
    st.caption(f"Accuracy right after the cut: {s.record.one_shot_accuracy:.1%}; after the fine-tune: "
               f"{s.record.clean_accuracy:.1%}.")


def result(s: Story) -> None:
    eps = s.config.epsilon
    st.markdown(f"The result: robust accuracy against the attack budget, for the pruned model, the dense teacher "
                f"and magnitude pruning at the same κ = {s.config.sparsity:g} and the same fine-tune budget. The "
                "sparsity profile beside it is the one-cut picture of step 1, now for the solved student as well.")
    if s.record is None:
        _needs_run("The result at this κ")
        return
    left, right = st.columns(2)
    with left:
        show.figure(charts.robustness_figure(s.record, s.baselines, eps), "walk-robustness")
    with right:
        if s.profile:
            show.figure(profile_figure(s.profile, s.config.sparsity, s.config.method), "walk-profile")
    if not any(label.startswith("magnitude") for label in s.baselines):
        magnitude = deadwood.with_updates(s.config, method="magnitude")
        if st.button("Run magnitude pruning at these settings", key="walk_magnitude", disabled=s.busy,
                     icon=":material/play_arrow:", help="adds its curve: the same teacher, κ and fine-tune"):
            runs.start("walk", [magnitude])
            st.rerun()


@dataclass(frozen=True)
class Step:
    title: str
    draw: Callable[[Story], None]


STEPS = (Step("The dense teacher", teacher), Step("The problem", problem), Step("The solve, replayed", solve),
         Step("One global cut", cut), Step("The fine-tune", finetune), Step("The result", result))
