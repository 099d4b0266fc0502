"""The sparsity profile's cuts on resnet18: one sort of each network's magnitudes for every κ
(``cut.cuts``, today) against one ``global_cut`` (a ``topk`` over all 11.2 M weights) per κ, as before.

Random weights, 32x32 inputs, 3 classes, 6 test samples, 8 κ, one torch thread (no oversubscription beside
other work); the two alternate, 2 repeats each, and the medians are printed with a check that both gave the
same profile. A benchmark, not a test::

    python benchmarks/profile_cuts.py
"""
import statistics
import time

import torch

from deadwood import RunConfig
from deadwood.models.zoo import build_torchvision
from deadwood.data.datasets import ArrayDataset
from deadwood.data.registry import DatasetInfo
import deadwood.pruning.sparsity_profile as sp
from deadwood.pruning.masks import global_cut

torch.set_num_threads(1)  # one thread: no oversubscription beside other work
torch.manual_seed(0)
info = DatasetInfo("noise", (3, 32, 32), 3, (0.5,) * 3, (0.25,) * 3, True)
test = ArrayDataset(torch.rand(20, 3, 32, 32), torch.arange(20) % 3, info, "test")
student, teacher = build_torchvision("resnet18", (3, 32, 32), 3).eval(), build_torchvision("resnet18", (3, 32, 32), 3).eval()
config = RunConfig()
SPARSITIES = [0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995]
one_sort = sp.cuts
per_cut = lambda scores, config: (lambda k: global_cut(scores, k, config.min_keep))  # noqa: E731
times = {"one sort": [], "topk per cut": []}
results = {}
for r in range(2):
    for name, f in (("one sort", one_sort), ("topk per cut", per_cut)):
        sp.cuts = f
        t = time.perf_counter()
        results[name] = sp.sparsity_profile(student, teacher, test, config, samples=6, sparsities=SPARSITIES)
        times[name].append(time.perf_counter() - t)
print({k: [round(x, 1) for x in v] for k, v in times.items()}, {k: round(statistics.median(v), 1) for k, v in times.items()})
print("same profile:", results["one sort"] == results["topk per cut"], "cuts:", len(results["one sort"]["sparsities"]))
