"""A RunConfig checks values only; what they point to is checked once, as a run starts
(deadwood.resolve). Every dataset and model name reaches its kind through one registry."""
import pytest
import torch

import deadwood
from deadwood import RunConfig, TeacherConfig, resolve
from deadwood.data import registry as data_registry
from deadwood.data.datasets import data_digest, dataset_info, load_dataset, register_arrays
from deadwood.errors import ConfigError, DatasetNotFound, RunFileError
from deadwood.models import registry as model_registry
from deadwood.models import zoo
from deadwood.models.registry import build_model, register_model
from fakedata import write_mnist
from test_image_folder import make_tree


class Spy:
    """Stands in for a registry entry: answers as the entry does, and notes which of its methods were asked."""

    def __init__(self, entry):
        self.entry, self.calls = entry, []

    def __getattr__(self, attr):
        real = getattr(self.entry, attr)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            self.calls.append(attr)
            return real(*args, **kwargs)

        return call


@pytest.fixture
def spy_dataset(monkeypatch):
    def spy(name, prefix=None):
        where = data_registry._PREFIXES if prefix else data_registry._NAMED
        key = prefix or name
        watched = Spy(where[key])
        monkeypatch.setitem(where, key, watched)
        return watched

    return spy


def test_a_folder_that_does_not_exist_is_a_value_but_run_refuses_it_before_any_work(tmp_path):
    config = RunConfig(dataset="folder", data_dir=str(tmp_path / "nowhere"), image_size=8)  # values only
    cache, out = tmp_path / "cache", tmp_path / "out"
    for start in (lambda: deadwood.run(config, cache_dir=cache, out=out),
                  lambda: deadwood.pipeline.prepare(config, "teacher", cache_dir=cache), lambda: resolve(config)):
        with pytest.raises(DatasetNotFound) as e:
            start()
        assert str(e.value) == f"image folder {tmp_path / 'nowhere'} does not exist"  # the scan's own message
    assert not cache.exists() and not out.exists()


def test_building_a_torchvision_config_builds_no_network(monkeypatch):
    built = []
    real = zoo.build_torchvision
    monkeypatch.setattr(zoo, "build_torchvision", lambda *a: built.append(a) or real(*a))
    zoo._fits_once.cache_clear()
    config = RunConfig(dataset="digits", model="torchvision:resnet18")
    deadwood.with_updates(config, sparsity=0.5).validate()
    config.key()
    with pytest.raises(ConfigError, match=r"unknown torchvision architecture 'resnet_18' \(closest: resnet18"):
        RunConfig(model="torchvision:resnet_18")  # the name is checked without building anything
    assert built == []
    assert resolve(config) == config and built == [("resnet18", (1, 8, 8), 10)]  # the run's start builds it
    resolve(config)
    assert len(built) == 1  # once per process and input
    zoo._fits_once.cache_clear()


def test_a_checkpoint_is_read_when_the_run_starts_not_when_the_config_is_built(tmp_path):
    other = tmp_path / "moons.pt"
    torch.save(build_model("mlp", dataset_info("moons")).state_dict(), other)
    config = RunConfig(teacher_checkpoint=str(other), teacher=TeacherConfig(epochs=0))
    with pytest.raises(ConfigError, match=f"checkpoint {other} does not fit Sequential"):
        resolve(config)
    with pytest.raises(RunFileError, match="could not be read"):
        resolve(RunConfig(teacher_checkpoint=str(tmp_path / "none.pt")))


def _reached(spy, name, **kw):
    """dataset_info, data_digest and load_dataset of ``name``: each answer the entry's own, asked through the registry."""
    info = dataset_info(name, kw.get("data_dir"), kw.get("image_size", 32))
    digest = data_digest(name, kw.get("data_dir"), 0, kw.get("image_size", 32))
    ds = load_dataset(name, "test", **kw)
    assert {"info", "digest", "load"} <= set(spy.calls)
    entry = spy.entry
    assert info == entry.info(name, kw.get("data_dir"), kw.get("image_size", 32)) == ds.info
    assert digest == entry.digest(name, kw.get("data_dir"), 0, kw.get("image_size", 32))
    x, y = entry.load(name, "test", kw.get("data_dir"), 0, False, kw.get("image_size", 32))
    assert torch.equal(ds.x, x) and torch.equal(ds.y, y)


def test_every_dataset_kind_is_reached_through_the_registry(spy_dataset, tmp_path):
    _reached(spy_dataset("digits"), "digits")
    _reached(spy_dataset("mnist"), "mnist", data_dir=write_mnist(tmp_path / "mnist"))
    folder = make_tree(tmp_path / "photos", per_class=3)
    _reached(spy_dataset("folder"), "folder", data_dir=str(folder), image_size=8)
    x, y = torch.rand(12, 3), torch.arange(12) % 2
    name = register_arrays((x, y), (x, y), ("a", "b"))
    spy = spy_dataset(name, prefix="user:")
    _reached(spy, name)
    spy.calls.clear()
    RunConfig(dataset=name, model="mlp")
    assert spy.calls == ["known"]  # building the config asks for the name only


def test_every_model_kind_is_reached_through_the_registry(monkeypatch):
    info = dataset_info("digits")
    user = register_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)))
    for name, table, key in (("mlp", model_registry.REGISTRY, "mlp"),
                             ("torchvision:resnet18", model_registry.PREFIXES, "torchvision:"),
                             (user, model_registry.PREFIXES, "user:")):
        spy = Spy(table[key])
        monkeypatch.setitem(table, key, spy)
        RunConfig(model=name)
        assert spy.calls == ["known"]
        resolve(RunConfig(model=name))
        assert spy.calls[-1] == "check"
        model = build_model(name, info, seed=0)
        assert spy.calls[-2:] == ["check", "make"]
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_unknown_names_are_refused_as_before():
    datasets = "digits, moons, mnist, fashion-mnist, cifar10, svhn, folder"
    models = "mlp, lenet5, convnet, vgg, resnet20, or torchvision:NAME for a torchvision architecture"
    cases = [
        (lambda: RunConfig(dataset="imagenet"), f"unknown dataset 'imagenet'; choose one of: {datasets}"),
        (lambda: dataset_info("imagenet"), f"unknown dataset 'imagenet'; choose one of: {datasets}"),
        (lambda: RunConfig(model="alexnet"), f"unknown model 'alexnet'; choose one of: {models}"),
        (lambda: build_model("alexnet", dataset_info("digits")), f"unknown model 'alexnet'; choose one of: {models}"),
        (lambda: RunConfig(dataset="user:0123"), "dataset 'user:0123' is data handed to deadwood.prune in another "
                                                  "process; pass it to deadwood.prune again to use it"),
        (lambda: RunConfig(model="user:0123"), "model 'user:0123' is a network handed to deadwood.prune in another "
                                                "process; pass it to deadwood.prune again to use it"),
    ]
    for attempt, message in cases:
        with pytest.raises(ConfigError) as e:
            attempt()
        assert str(e.value) == message
