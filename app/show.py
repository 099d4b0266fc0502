"""Small rendering pieces the pages share: a figure with its download, headline numbers, downloads."""
from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from deadwood import DeadwoodError
from deadwood.pruning.sparsity_profile import at
from deadwood.storage.record import RunRecord

from . import captions, charts, runs
from .charts_profile import profile_figure
from .formatting import PERCENT_STEP, percent_text, percent_value, plain, points_text

_PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"scale": 2}}


def figure(fig: go.Figure, name: str) -> None:
    """Draw ``fig`` with a button that downloads it as a self-contained HTML file (built on click)."""
    st.plotly_chart(fig, key=f"fig_{name}", config=_PLOTLY_CONFIG)
    st.download_button("Figure (HTML)", data=lambda: charts.to_html(fig), file_name=f"{name}.html",
                       mime="text/html", key=f"html_{name}", on_click="ignore", type="tertiary",
                       icon=":material/download:")


def budget_note(configs) -> str:
    """Which training budget protocol ``configs`` use, and each method's epochs by stage after the
    teacher (deadwood.methods.budget), in one line to sit above a table of them."""
    from deadwood.methods.budget import plan

    plans = {c.method: plan(c) for c in configs}
    protocols = sorted({p.protocol for p in plans.values()})
    each = "; ".join(f"{m} {p.total} ({' + '.join(f'{s} {n}' for s, n in p.by_stage().items())})"
                     for m, p in plans.items())
    return f"Training budget: **{' and '.join(protocols)}**. Epochs after the teacher, by stage: {each}."


def damaged(configs, busy: bool) -> bool:
    """Say which cached runs of ``configs`` cannot be read, with a button that computes them again;
    True when it was pressed (their entries are removed by then: the page starts the runs)."""
    bad = [(c, problem) for c in configs if (problem := runs.damaged(c)) is not None]
    if not bad:
        return False
    c, problem = bad[0]
    more = f" (and {len(bad) - 1} more of this page's runs)" if len(bad) > 1 else ""
    st.error(f"The cached run of {c.method} at κ = {c.sparsity:g}{more} is damaged and cannot be shown: "
             f"{plain(problem)}. Recompute it to replace the damaged files.", icon=":material/broken_image:")
    if st.button("Recompute", key="recompute", icon=":material/refresh:", disabled=busy,
                 help="a run is in progress" if busy else "deletes the damaged entry and runs it again"):
        for config, _ in bad:
            runs.discard(config)
        return True
    return False


def unloadable(error: Exception, configs, busy: bool) -> list:
    """After ``error`` (a cached run's files would not load): show it, with a button that computes
    again those of ``configs`` whose runs do not load; returns them, removed from the cache, when
    pressed (else an empty list)."""
    bad = [c for c in configs if not _loads(c)]
    st.error(plain(error), icon=":material/broken_image:")
    if bad and st.button("Recompute", key="recompute_files", icon=":material/refresh:", disabled=busy,
                         help=f"deletes the damaged {'run' if len(bad) == 1 else f'{len(bad)} runs'} "
                              "and computes again"):
        for c in bad:
            runs.discard(c)
        return bad
    return []


def _loads(config) -> bool:
    try:
        runs.loaded(config)
    except DeadwoodError:
        return False
    return True


def table(rows: list[dict], percent=(), seconds=(), help: dict | None = None) -> None:
    """``rows`` as a table; the fractions in the ``percent`` columns all read as percentages with one
    decimal (80.0%, 85.8%: Streamlit's plain "percent" drops trailing zeros, 80% beside 85.83%),
    rounded by :func:`app.formatting.percent_value` (the column alone would truncate), the ``seconds``
    columns with one decimal; ``help`` gives a column's header its tooltip."""
    help = help or {}
    rows = [{k: percent_value(v) if k in percent else v for k, v in row.items()} for row in rows]
    config = {name: st.column_config.NumberColumn(format="percent", step=PERCENT_STEP, help=help.get(name))
              for name in percent}
    config.update({name: st.column_config.NumberColumn(format="%.1f", help=help.get(name)) for name in seconds})
    config.update({name: st.column_config.Column(help=text) for name, text in help.items() if name not in config})
    st.dataframe(rows, hide_index=True, column_config=config)


def run_report(record: RunRecord, epsilon: float, baselines: dict, model_file: Path) -> None:
    """Everything a finished run shows: headline numbers, its charts, its downloads."""
    cfg = record.config
    st.caption(f"{cfg['method']} · κ = {cfg['sparsity']:g} · ε = {cfg['epsilon']:g} · {cfg['dataset']}/"
               f"{cfg['model']} · seed {cfg['seed']} · run {record.key}")
    headline(record, epsilon)
    captions.epsilon_caption(epsilon)
    dual = bool(charts.dual_entries(record.history))
    if dual:
        figure(charts.multipliers_figure(record.history), "multipliers")
        captions.multipliers_caption()
    else:
        st.caption(f"No Lagrange multipliers: '{cfg['method']}' has no dual solve.")
    left, right = st.columns(2)
    with left:
        figure(charts.layer_sparsity_figure(record), "layer-sparsity")
    with right:
        figure(charts.robustness_figure(record, baselines, epsilon), "robustness")
        for message in record.robustness.get("warnings", []):
            st.warning(f"Sanity check: {plain(message)}", icon=":material/warning:")
    pairs = [(charts.dead_wood_figure(record.history, cfg["sparsity"]), "dead-wood")] if dual else []
    pairs.append((charts.training_figure(record.history), "training"))
    for col, (fig, name) in zip(st.columns(2), pairs):
        with col:
            figure(fig, name)
    if record.sparsity_profile:
        figure(profile_figure(record.sparsity_profile, cfg["sparsity"], cfg["method"]), "sparsity-profile")
        st.caption("Before fine-tuning: accuracy right after one cut of the same solve at every κ. Moving the "
                   "κ slider redraws it at once; **Run** then only cuts, fine-tunes and evaluates.")
    run_downloads(record, model_file)


def one_shot_preview(profile: dict, sparsity: float, method: str) -> None:
    """The stored solve cut at ``sparsity``: one-shot numbers labelled as such, and the profile."""
    p = at(profile, sparsity)
    st.subheader(f"Before fine-tuning: one cut of the stored solve at κ = {p['sparsity']:g}")
    attack = f"{profile['attack'].upper()} at ε = {profile['epsilon']:g}"
    first, second = st.columns(2), st.columns(2)  # two to a row: every label shows whole
    first[0].metric("Clean, right after the cut", percent_text(p["student"]["clean"]),
                    help="the solved student cut at this κ, not fine-tuned")
    first[1].metric("Robust, right after the cut", percent_text(p["student"]["robust"]),
                    help=f"under {attack}: a cheap attack, for the profile only; the run's reported robustness "
                         "is measured after fine-tuning with PGD")
    second[0].metric("Teacher's weights, same cut: clean", percent_text(p["teacher"]["clean"]),
                     help="what magnitude pruning keeps right after its cut")
    second[1].metric("Teacher's weights, same cut: robust", percent_text(p["teacher"]["robust"]),
                     help=f"under {attack}")
    figure(profile_figure(profile, sparsity, method), "sparsity-profile")
    st.info("The solve for these settings is stored: press **Run** to cut at this κ, fine-tune and evaluate "
            "(no solve epochs). Nothing above is fine-tuned.")


def at_chance(record: RunRecord) -> dict[str, str]:
    """Which of the run's models (``teacher``, ``pruned``) the record's warnings put at chance level."""
    who = {"teacher": "the dense teacher's clean accuracy", "pruned": "the pruned model's clean accuracy"}
    return {key: line for line in record.warnings for key, start in who.items() if line.startswith(start)}


def headline(record: RunRecord, epsilon: float) -> None:
    """Global sparsity, clean and robust accuracy (against the teacher), accuracy after the cut, time;
    a model at chance level is said above them, and no change against the teacher is drawn as a gain."""
    teacher = record.teacher or {}
    robust = record.robust_accuracy(epsilon)
    t_robust = None
    for e, a in zip(teacher.get("robustness", {}).get("epsilons", []),
                    teacher.get("robustness", {}).get("accuracy", [])):
        if abs(e - epsilon) < 1e-12:
            t_robust = a
    chance = at_chance(record)
    for line in record.warnings:
        st.warning(plain(line[0].upper() + line[1:]), icon=":material/casino:")
    first, second = st.columns(3), st.columns(3)  # three to a row: every label shows whole
    first[0].metric("Global sparsity", f"{record.global_sparsity:.2%}",
                    help="zero fraction over all prunable weights, counted in the saved model")
    if chance:
        first[1].metric("Clean accuracy", percent_text(record.clean_accuracy),
                        "at chance level" if "pruned" in chance else "teacher at chance level",
                        delta_color="off", delta_arrow="off",
                        help="after fine-tuning; no change against the teacher is shown while a model is at chance")
    else:
        first[1].metric("Clean accuracy", percent_text(record.clean_accuracy),
                        _delta(record.clean_accuracy, teacher.get("clean_accuracy")),
                        help="after fine-tuning; the change is against the dense teacher")
    first[2].metric(f"Robust accuracy (ε = {epsilon:g})", percent_text(robust),
                    None if chance else _delta(robust, t_robust),
                    help="under the record's PGD attack after fine-tuning; the change is against the teacher")
    second[0].metric("Accuracy right after the cut", percent_text(record.one_shot_accuracy),
                     help="clean accuracy after the one global cut, before fine-tuning: what the cut alone cost")
    total = record.timings.get("total")
    second[1].metric("Run time", "n/a" if total is None else f"{total:.1f} s",
                     help="wall-clock seconds of the run until its results were stored (a cached teacher counts "
                          "only its loading); the sparsity profile comes after, with its own time")
    stages = [("data", "data"), ("teacher", "teacher"), ("prune", "prune"), ("finetune", "fine-tune"),
              ("eval", "evaluation"), ("profile", "sparsity profile")]
    st.caption("Time per stage: " + " · ".join(f"{label} {record.timings[k]:.1f} s" for k, label in stages
                                                if k in record.timings)
               + (" (teacher from the cache)" if teacher.get("cached") else ""))


def _delta(value, reference):
    if value is None or reference is None:
        return None
    return points_text(value - reference) + " vs teacher"


def pair_metrics(pair: dict, method: str) -> None:
    """Clean and attacked accuracy of the dense teacher and the pruned model, on the same samples:
    a row per model, so every label shows whole."""
    r, eps = pair["pruned"], pair["pruned"]["epsilons"][-1]
    cols = iter([*st.columns(2), *st.columns(2)])
    for key, name, short in (("teacher", "Dense", "Dense"), ("pruned", f"Pruned ({method})", "Pruned")):
        clean, attacked = pair[key]["clean_accuracy"], pair[key]["accuracy"][-1]
        next(cols).metric(f"{name}: clean", percent_text(clean), help=f"on the same {r['samples']} test samples")
        next(cols).metric(f"{short}: {r['attack']} at ε = {eps:g}", percent_text(attacked),
                          points_text(attacked - clean),
                          help=f"on {r['samples']} test samples, the same for both models; the change is "
                               "against its clean accuracy")


def run_downloads(record: RunRecord, model_file: Path) -> None:
    """The run record (JSON) and the pruned checkpoint (a plain state_dict, zeros stored)."""
    cols = st.columns(2)
    cols[0].download_button("Run record (JSON)", data=json.dumps(record.to_dict(), indent=1),
                            file_name=f"record-{record.key}.json", mime="application/json",
                            key="dl_record", on_click="ignore", icon=":material/download:", width="stretch")
    cols[1].download_button("Pruned checkpoint (model.pt)", data=lambda: Path(model_file).read_bytes(),
                            file_name=f"model-{record.key}.pt", mime="application/octet-stream",
                            key="dl_model", on_click="ignore", icon=":material/download:", width="stretch",
                            help="load with torch.load(path, weights_only=True) into deadwood.build_model(...)")


def about_the_method() -> None:
    with st.expander("About the method", icon=":material/school:"):
        st.markdown("**Deadwooding** (Kaur, Fioretto, Salekin, 2022) first lets a copy of the trained network "
                    "*find its own dead wood*: it minimises the weights' size while constraints keep it close "
                    "to the dense teacher and as robust.")
        st.latex(r"\min_W\ R(W)=\frac{1}{N}\sum_l \frac{\lVert W_l\rVert_1}{m_l}"
                 r"\quad\text{s.t.}\quad g_j(W)\le 0")
        st.latex(r"g_l=\frac{\mathbb{E}\lVert h^S_l(x)-h^T_l(x)\rVert^2}{\mathbb{E}\lVert h^T_l(x)\rVert^2}"
                 r"-\delta_{rep},\qquad g_{kd}=\mathbb{E}\,\mathrm{KL}\big(p_T^\tau\,\Vert\,p_S^\tau\big)-\delta_{kd}")
        st.latex(r"g_{rob}=\mathbb{E}\,\mathrm{CE}\big(S(x+a_\varepsilon),y\big)"
                 r"-(1+\rho)\,\mathbb{E}\,\mathrm{CE}\big(T(x+a_\varepsilon),y\big)")
        st.markdown("A gradient step on the weights lowers the Lagrangian; every k steps (23 by default: one epoch "
                    "of the embedded digits) each multiplier rises by its constraint's mean violation over them, "
                    "scaled so that s is the rise per epoch:")
        st.latex(r"\mathcal{L}(W,\lambda)=R(W)+\sum_j\lambda_j\max(0,g_j(W)),\qquad"
                 r"\lambda_j\leftarrow\max\!\big(0,\ \lambda_j+s\cdot\overline{\max(0,g_j)}\big)")
        st.markdown("Then **one global cut** zeroes the fraction κ of weights with the smallest |w| across all "
                    "layers, and a **fine-tune** under the fixed mask (distillation from the teacher plus FGSM "
                    "adversarial training) repairs what the cut cost.")
        st.markdown(
            "- **Lagrange multipliers and violations**: each λ grows while its constraint is violated (g > 0) "
            "and stops once it holds; both panels share the x-axis.\n"
            "- **Per-layer sparsity**: the single global threshold hits layers unevenly; the dashed line is the "
            "overall sparsity.\n"
            "- **Robustness**: accuracy under a PGD attack of growing budget ε, for the pruned model, the dense "
            "teacher and any other method already computed at the same settings.\n"
            "- **Dead wood forming**: per layer, the share of weights already below the threshold the cut "
            "will use.\n"
            "- **Accuracy through the stages**: held-out accuracy after every epoch of every stage.")
