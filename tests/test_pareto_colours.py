"""Every Pareto chart draws a method in its own colour from the method registry (HARP pink, HYDRA
purple, ...), the colour it has in every other chart, not in a colour picked by its position."""
from deadwood import bench
from deadwood.methods import get_method, method_colours, method_names, methods
from app import charts


def _summary_entry(method, k, clean, robust):
    stat = lambda v: {"mean": v, "std": 0.01, "n": 2}  # noqa: E731
    return {"method": method, "sparsity": k, "clean_accuracy": stat(clean), "robust_accuracy": stat(robust)}


def _record(method, k, clean, robust):
    return {"config": {"method": method, "sparsity": k}, "clean_accuracy": clean,
            "robustness": {"epsilons": [0.0, 0.1], "accuracy": [clean, robust]}}


def _method_traces(fig, names):
    return {t.name: t for t in fig.data if t.name in names}


def test_the_bench_pareto_chart_takes_each_methods_colour_from_the_registry():
    names = method_names()  # every registered method, in an order unrelated to the colours
    summary = [_summary_entry(m, k, 0.9 - i / 100, 0.5 - k / 10) for i, m in enumerate(reversed(names))
               for k in (0.9, 0.99)]
    traces = _method_traces(bench.pareto_figure(summary, 0.1), names)
    assert set(traces) == set(names)
    for m, t in traces.items():
        assert t.line.color == t.marker.color == get_method(m).color
    assert traces["harp"].marker.color == "#e377c2"
    # one method alone keeps its colour too (not Plotly's first colour)
    only = _method_traces(bench.pareto_figure([_summary_entry("hydra", 0.9, 0.8, 0.4)], 0.1), ["hydra"])
    assert only["hydra"].marker.color == get_method("hydra").color != "#636efa"


def test_a_method_the_registry_does_not_know_gets_a_colour_no_method_uses():
    names = ["magnitude", "retired-method", "harp", "another", "a-third"]
    colours = method_colours(names)
    assert colours["magnitude"] == get_method("magnitude").color and colours["harp"] == "#e377c2"
    assert len(set(colours.values())) == len(names)
    registered = {m.color.lower() for m in methods()}
    assert not {colours[n].lower() for n in ("retired-method", "another", "a-third")} & registered


def test_an_unknown_name_has_one_colour_in_the_app_and_in_the_benchmark_charts():
    # the app asks name by name, the benchmark for the set it draws: the same rule gives the same colour
    for name in ("retired-method", "hydra-v0", "x"):
        assert charts.method_color(name) == method_colours([name])[name] == method_colours(["gmp", name])[name]
    # two unknown names whose characters pick the same spare still differ when drawn together
    a, b = "ab", "ba"
    assert method_colours([a])[a] == method_colours([b])[b]
    assert len(set(method_colours([a, b]).values())) == 2


def test_the_apps_pareto_chart_uses_the_same_colours():
    records = [_record(m, 0.9, 0.9 - i / 100, 0.4) for i, m in enumerate(["harp", "deadwooding", "gmp"])]
    traces = _method_traces(charts.pareto_figure(records, 0.1), ["harp", "deadwooding", "gmp"])
    assert {m: (t.line.color, t.marker.color) for m, t in traces.items()} == {
        m: (get_method(m).color, get_method(m).color) for m in ("harp", "deadwooding", "gmp")}
