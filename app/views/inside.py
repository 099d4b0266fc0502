"""Inside the network: what pruning changed, through four lenses from related work (deadwood.analysis)."""
import streamlit as st

import deadwood
from app import captions, charts, computed, lenses, links, runs, show, widgets
from app import charts_inside as ci
from app.formatting import plain

LENSES = ("Linear regions", "Representations", "Recall distortion", "Block structure")
BOUND_GRID = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998)

st.title("Inside the network")
links.check({**links.sidebar_rules(), "lens": links.one_of(LENSES, "the lens")})
job = runs.current("inside")
busy = runs.busy("inside")  # once: the job may end while the page draws
with st.sidebar:
    run_slot = st.container()  # the Run button on top, in a fixed place (widgets.sidebar); drawn below
    data = widgets.data_widgets()
    epsilon = widgets.epsilon_widget()
    advanced = widgets.advanced_widgets()
lens = st.radio("Lens", LENSES, horizontal=True, key="lens", label_visibility="collapsed", bind="query-params",
                disabled=busy)  # a lens's choices wait while the page's job (a run or a lens) computes
pruners = [n for n in deadwood.method_names() if deadwood.get_method(n).prunes]


def choice(settings: list[dict]) -> widgets.Choice:
    """The runs a lens needs: the sidebar's data, epsilon and advanced settings with ``settings`` on top."""
    return widgets.choose([{**data, "epsilon": epsilon, **s} for s in settings], advanced)


# --------------------------------------------------------------------------- the four lenses

def regions_lens():
    st.caption(captions.regions_network(data["dataset"], data["model"], lenses.REGION_RESOLUTION))
    left, right = st.columns(2)
    method = left.selectbox("Method", pruners, index=pruners.index("magnitude"), key="regions_method", disabled=busy)
    sparsity = right.slider("Sparsity κ", 0.5, 0.995, 0.95, step=0.005, key="regions_sparsity", disabled=busy)
    # the sidebar's folder, image size and checkpoint belong to its own data and model, not to moons
    moons = {"dataset": "moons", "model": "mlp", "data_dir": None, "image_size": deadwood.RunConfig().image_size,
             "teacher_checkpoint": None}
    pick = choice([dict(moons, method=method, sparsity=round(sparsity, 4))])

    def draw(again: bool):
        # the bound is for the sidebar's dataset when its model is the MLP, else for moons
        bound = (choice([{"method": "magnitude"}]).config if data["model"] == "mlp" else None) or pick.config
        found = computed.result("inside", lenses.regions(pick.config, bound, BOUND_GRID), again, check=[pick.config])
        if found is None:
            return
        r = lenses.region_maps(found)
        panels = [("dense teacher", r["dense"]), (f"{method}, κ = {pick.config.sparsity:g}", r["pruned"])]
        show.figure(ci.regions_change_figure(r["dense"], r["pruned"], panels[1][0]), "regions-change")
        with st.expander("The two region maps, one colour per region"):
            test = widgets.dataset("moons", "test", None, pick.config.seed)
            show.figure(ci.regions_figure(panels, (test.x[:, 0], test.x[:, 1], test.y), r["bounds"]), "regions")
        bound_section(bound, r["bound_rows"])

    return pick, draw


def bound_section(config, rows):
    """The bound for ``config``'s MLP (``rows``: from the regions job)."""
    st.subheader(f"The region bound and layer allocation ({config.dataset} MLP)")
    st.caption("log10 of the expected bound on linear regions at each global sparsity, when every layer keeps the "
               "same density and when the densities maximise the bound (the `bound` allocation of the magnitude "
               "cut). Ranks of random sparse matrices, sampled.")
    kappa = st.select_slider("Sparsity for the allocation", BOUND_GRID, value=0.99, key="bound_sparsity")
    left, right = st.columns(2)
    with left:
        show.figure(ci.bound_figure(rows), "bound")
    at = next(r for r in rows if r["sparsity"] == kappa)
    with right:
        show.figure(ci.allocation_figure({"uniform": {n: 1 - kappa for n in at["densities"]},
                                          "bound-guided": at["densities"]}), "allocation")


def similarity_lens():
    st.caption("SVCCA between each layer's output in the pruned (fine-tuned) model and in the dense teacher, on "
               "held-out data; dashed: a dense model from another seed, the magnitude mask re-initialised and "
               "retrained, a random mask with the same per-layer counts (Blakeney et al.).")
    left, right = st.columns(2)
    methods = left.multiselect("Methods", pruners, default=["deadwooding", "magnitude"], key="similarity_methods",
                             disabled=busy)
    sparsity = right.slider("Sparsity κ", 0.5, 0.995, 0.9, step=0.005, key="similarity_sparsity", disabled=busy)
    if not methods:
        return widgets.Choice(problem="pick at least one method"), None
    pick = choice([dict(method=m, sparsity=round(sparsity, 4)) for m in methods])

    def draw(again: bool):
        study = computed.result("inside", lenses.similarity(pick.config, methods), again, check=pick.configs)
        if study is None:
            return
        show.figure(ci.similarity_figure(study), "similarity")
        labels = charts.layer_labels(study["layers"])
        show.table([{"model": n, "accuracy": study["accuracy"][n], **{labels[k]: v for k, v in s.items()}}
                    for n, s in study["similarity"].items()], percent=("accuracy",))

    return pick, draw


def distortion_lens():
    st.caption("α > 1: pruning widened the gaps between the classes' recall; α < 1: it narrowed them (Good et al.). "
               "Under attack: robust recall under the runs' own foolbox PGD evaluation at the sidebar's ε.")
    left, right = st.columns(2)
    methods = left.multiselect("Methods", pruners, default=["deadwooding", "magnitude", "undecayed"],
                               key="distortion_methods", disabled=busy)
    grid = right.multiselect("Sparsity grid", widgets.SPARSITY_GRID, default=[0.5, 0.8, 0.9, 0.95],
                             key="distortion_grid", format_func=lambda k: f"{k:.1%}", disabled=busy)
    if not methods or not grid:
        return widgets.Choice(problem="pick at least one method and one sparsity"), None
    pick = choice([dict(method=m, sparsity=k) for m in methods for k in sorted(grid)])

    def draw(again: bool):
        rows = computed.result("inside", lenses.distortion(pick.config, methods, sorted(grid)), again)
        if rows is None:
            return
        show.figure(ci.distortion_figure(rows), "distortion")
        labels = {f"{c.method}, κ = {c.sparsity:g}": c for c in pick.configs}
        one = labels[st.selectbox("Per-class balances of", list(labels), key="distortion_run")]
        info = one.data_info()
        classes = list(info.classes) or [str(c) for c in range(info.num_classes)]
        show.figure(ci.balance_figure(lenses.balances(one), classes), "balances")

    return pick, draw


def blocks_lens():
    st.caption("Block-based column-row masks (GRIM): each weight matrix, convolutions as out × in·kh·kw, tiled "
               "into blocks; whole rows and columns pruned inside each block by their norm. Dark: kept.")
    cols = st.columns(4)
    method = cols[0].selectbox("Method", ("magnitude", "deadwooding"), key="blocks_method", disabled=busy)
    sparsity = cols[1].slider("Sparsity κ", 0.5, 0.995, 0.9, step=0.005, key="blocks_sparsity", disabled=busy)
    rows = cols[2].number_input("Block rows", 1, 256, 8, key="block_rows", disabled=busy)
    width = cols[3].number_input("Block columns", 1, 256, 8, key="block_cols", disabled=busy)
    base = dict(method=method, sparsity=round(sparsity, 4))
    pick = choice([base, dict(base, **{"cut.granularity": "bcr", "cut.block_rows": int(rows),
                                       "cut.block_cols": int(width)})])

    def draw(again: bool):
        records = [runs.record(c) for c in pick.configs]
        robust = f"robust (ε = {pick.config.epsilon:g})"
        show.table([{"granularity": c.cut.granularity, "sparsity": r.global_sparsity,
                     "after the cut": r.one_shot_accuracy, "after fine-tuning": r.clean_accuracy,
                     robust: r.robust_accuracy(c.epsilon)} for c, r in zip(pick.configs, records)],
                   percent=("sparsity", "after the cut", "after fine-tuning", robust))
        masks = [lenses.saved_masks(lenses.as_text(c)) for c in pick.configs]
        labels = charts.layer_labels(masks[0])
        layer = st.selectbox("Layer", list(masks[0]), key="blocks_layer", format_func=labels.get)
        show.figure(ci.mask_figure({"unstructured": masks[0][layer], "bcr": masks[1][layer]}, labels[layer]),
                    "masks")

    return pick, draw


pick, draw = {LENSES[0]: regions_lens, LENSES[1]: similarity_lens, LENSES[2]: distortion_lens,
              LENSES[3]: blocks_lens}[lens]()
with run_slot:
    pressed = widgets.run_button(pick, busy=busy)
if pick.problem:
    st.error(plain(pick.problem), icon=":material/block:")
recompute = show.damaged(pick.configs, busy=busy)
todo = lenses.missing(pick.configs)
if (pressed or recompute) and todo:
    runs.start("inside", todo)
    st.rerun()
if busy:  # a run, or a lens's job
    computed.follow(job)
else:
    computed.outcome(job)
    if todo:
        st.info(f"{len(pick.configs) - len(todo)} of {len(pick.configs)} runs this lens needs are cached; press "
                f"**Run** to compute the other {len(todo)}.")
    elif draw is not None and pick.configs:
        try:
            draw(again=pressed)
        except deadwood.RunFileError as e:  # a damaged checkpoint in the cache: say so, offer to recompute
            redo = show.unloadable(e, pick.configs, busy=False)
            if redo:
                runs.start("inside", redo)
                st.rerun()
