"""The solve, replayed: Play, Pause, Step and an epoch slider over a stored solve (:mod:`app.replay`).

The controls and the frame are one fragment, so a frame reruns only the replay, never the page.
While playing, the fragment is declared with ``run_every`` and advances one epoch per run, stopping
at the last; starting and stopping the timer takes one whole-page rerun, since Streamlit sets a
fragment's timer when the page declares it. The epoch is the ``epoch`` widget, bound to the address.
"""
from __future__ import annotations

import time

import streamlit as st

import deadwood
from deadwood.pipeline import Cache

from . import links, replay, runs, show
from .charts_walkthrough import magnitude_histogram_figure, masks_figure, quantiles_figure, replay_figure

EPOCH, PLAYING, HOLD, RESTART = "epoch", "replay_playing", "replay_hold", "replay_restart"
LINK_NOTE = "replay_link_note"  # what the address's epoch could not be, kept until the epoch moves
FRAME_SECONDS = "replay_frame_seconds"  # the last frame's script time, read by benchmarks/replay_speed.py
EVERY = 0.7  # seconds between frames while playing


def draw(config: deadwood.RunConfig, slot: str, busy: bool) -> None:
    """The replay of ``config``'s stored solve at κ, or nothing when none is stored. ``slot``: the
    page's job slot, for the fresh solve an old entry needs."""
    if replay.at(config) is None:
        return
    every = EVERY if st.session_state.get(PLAYING) else None
    st.fragment(_frame, run_every=every)(config, slot, busy)


def _play(last: int) -> None:
    _moved()
    if st.session_state.get(EPOCH, last) >= last:
        st.session_state[EPOCH] = 1  # from the start again
    st.session_state.update({PLAYING: True, HOLD: True, RESTART: True})  # the first frame: where it stands


def _pause() -> None:
    st.session_state.update({PLAYING: False, RESTART: True})


def _step(by: int, last: int) -> None:
    _moved()
    st.session_state[EPOCH] = min(max(st.session_state.get(EPOCH, last) + by, 1), last)
    if st.session_state.get(PLAYING):
        _pause()


def _advance(last: int) -> bool:
    """One epoch on while playing; True when this frame is the last one played."""
    ss = st.session_state
    if not ss.get(PLAYING):
        return False
    if not ss.pop(HOLD, False):
        ss[EPOCH] = min(ss.get(EPOCH, last) + 1, last)
    if ss[EPOCH] >= last:
        ss[PLAYING] = False
        return True
    return False


def _moved() -> None:
    """The user chose an epoch: what the link's epoch could not be is behind them."""
    st.session_state.pop(LINK_NOTE, None)


def _frame(config: deadwood.RunConfig, slot: str, busy: bool) -> None:
    if st.session_state.pop(RESTART, False):
        st.rerun()  # the timer starts or stops with the page's next run
    start = time.perf_counter()
    r = replay.at(config)
    if r is None:
        return
    last = r.epochs
    ss = st.session_state
    if EPOCH not in ss:  # the page's first run: a link's epoch the slider cannot take is said, not dropped
        ss[LINK_NOTE] = links.problems(st.query_params, {EPOCH: links.whole_in(1, last, "the solve epoch")})
    for line in ss.get(LINK_NOTE, ()):  # said on every rerun of the fragment, not only the first
        st.warning(line, icon=":material/link_off:")
    if not isinstance(ss.get(EPOCH, last), int) or not 1 <= ss.get(EPOCH, last) <= last:
        ss.pop(EPOCH, None)
    stopped = _advance(last)
    playing = ss.get(PLAYING, False)
    row = st.columns([1.3, 1, 1, 6], vertical_alignment="bottom")
    value = {} if EPOCH in ss else {"value": last}
    epoch = row[3].slider("Solve epoch", 1, last, key=EPOCH, bind="query-params", disabled=playing,
                          help="replays the stored solve, epoch by epoch", on_change=_moved, **value) if last > 1 else 1
    row[0].button("Step back", key="replay_back", on_click=_step, args=(-1, last), icon=":material/skip_previous:",
                  help="one epoch back", disabled=epoch <= 1)
    if playing:
        row[1].button("Pause", key="replay_pause", on_click=_pause, icon=":material/pause:")
    else:
        row[1].button("Play", key="replay_play", on_click=_play, args=(last,), icon=":material/play_arrow:",
                      help="one epoch per frame, from the start when at the last epoch", disabled=last < 2)
    row[2].button("Step", key="replay_step", on_click=_step, args=(1, last), icon=":material/skip_next:",
                  help="one epoch on", disabled=epoch >= last)
    k = config.sparsity
    show.figure(replay_figure(r.history, epoch), "walk-replay")
    if r.frames is not None:
        frame = r.frames[epoch - 1]
        show.figure(magnitude_histogram_figure(frame["histogram"], frame["threshold"], k, epoch),
                    "walk-replay-magnitudes")
        show.figure(masks_figure(frame["pictures"], frame["layer_sparsity"], k, epoch), "walk-replay-masks")
    else:
        entry = r.history[epoch - 1]
        if entry.get("magnitude_quantiles"):
            show.figure(quantiles_figure(entry, k), "walk-quantiles")
        _missing(r, config, slot, busy)
    ss[FRAME_SECONDS] = time.perf_counter() - start
    if stopped:
        st.rerun()  # the last epoch: the timer stops with the page's next run


def _missing(r: replay.Replay, config: deadwood.RunConfig, slot: str, busy: bool) -> None:
    """Why this replay has no masks, and for an old entry a fresh solve that keeps them."""
    if r.missing == "large":
        st.info(f"This model has {r.note.get('weights', 0):,} prunable weights, more than the "
                f"{r.note.get('limit', 0):,} whose every epoch the solve keeps, so the replay shows "
                "each epoch's magnitudes from the quantiles the solve records, and no masks.",
                icon=":material/info:")
        return
    why = ("its stored epoch-by-epoch weights cannot be read" if r.missing == "damaged" else
           "it was stored before solves kept their weights epoch by epoch")
    st.info(f"This solve's masks cannot be replayed: {why}. The replay has its multipliers and recorded "
            "magnitude quantiles. It needs a fresh solve: "
            "**Solve again** recomputes it (with the cut, fine-tune and evaluation at this κ); every other "
            "run keeps using the stored solve until then.", icon=":material/history:")
    if st.button("Solve again", key="replay_resolve", disabled=busy, icon=":material/refresh:"):
        Cache().solves.discard(config)
        runs.discard(config)
        runs.start(slot, [config])
        st.rerun()
