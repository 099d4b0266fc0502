"""Walkthrough: the method in six steps, each drawn from the current settings' stored solve and run."""
import streamlit as st

from app import links, runs, stored_solve, widgets
from app.formatting import plain
from app.charts import dual_entries, multipliers_figure
from app.walkthrough_steps import STEPS, Story

NUMBERS = [str(i) for i in range(1, len(STEPS) + 1)]

st.title("Walkthrough: robust pruning, step by step")
links.check({**links.sidebar_rules(), "step": links.one_of(NUMBERS, "the step")})
job = runs.current("walk")
busy = runs.busy("walk")
choice, pressed = widgets.sidebar(widgets.deadwooding_run, busy=busy)
if choice.problem:
    st.error(plain(choice.problem), icon=":material/block:")
config = choice.config
solved = stored_solve.summary(config) if config else None
record = runs.record(config) if config else None
empty = config is not None and solved is None and record is None
offer = empty and not busy and st.button("Run these settings", key="walk_run", type="primary",
                                         icon=":material/play_arrow:")
if pressed or offer:
    runs.start("walk", choice.configs)
    st.rerun()


def move(by: int) -> None:
    here = NUMBERS.index(st.session_state.get("step") or "1")
    st.session_state["step"] = NUMBERS[min(max(here + by, 0), len(NUMBERS) - 1)]


if "step" not in st.session_state and "step" not in st.query_params:
    st.session_state["step"] = "1"  # highlighted from the start (a widget default would fight Back and Next)
nav = st.columns([1, 6, 1], vertical_alignment="center")
step = nav[1].segmented_control("Step", NUMBERS, key="step", bind="query-params", required=True,
                                label_visibility="collapsed", help=" · ".join(f"{n}: {s.title}"
                                                                             for n, s in zip(NUMBERS, STEPS)))
i = NUMBERS.index(step or "1")  # none: the address named a step that does not exist
nav[0].button("Back", key="back", on_click=move, args=(-1,), disabled=i == 0, icon=":material/arrow_back:")
nav[2].button("Next", key="next", on_click=move, args=(1,), disabled=i == len(NUMBERS) - 1,
              icon=":material/arrow_forward:")
st.subheader(f"Step {i + 1} of {len(STEPS)}: {STEPS[i].title}")



def live_chart(view):
    if dual_entries(view.history):
        st.plotly_chart(multipliers_figure(view.history), key="walk_live")


if busy:
    runs.follow(job, live_chart)
else:
    runs.outcome(job)
    if empty:
        st.info("Nothing is stored for these settings yet. **Run these settings** (or **Run** in the sidebar) "
                "computes the teacher, the solve and the fine-tuned model once; on the embedded default that "
                "takes seconds. Then every step draws from them.", icon=":material/play_circle:")
if config is not None and (not busy or job.view().published):  # published: the profile's bar goes on
    STEPS[i].draw(Story(config, solved, stored_solve.at(config), stored_solve.histograms(config), record,
                        runs.baselines(config) if record else {}, busy))
