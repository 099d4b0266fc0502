"""The user's checkpoint: loaded strictly and safely, refused with the keys that do not fit."""
import shutil

import pytest
import torch
from torch import nn

from deadwood.models.checkpoint import load_checkpoint
from deadwood.data.digest import file_digest
from deadwood.errors import ConfigError, RunFileError

RAN = []


def mark(what):
    RAN.append(what)
    return what


class Payload:
    """Unpickling this would call ``mark``: the weights-only loader must refuse it unread."""

    def __reduce__(self):
        return mark, ("code ran",)


def net(classes=10, width=4):
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def other_net():
    """Another architecture: a different module tree, one layer the same."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))


def trained(seed=0):
    torch.manual_seed(seed)
    model = net()
    model[1].running_mean += torch.randn(4)  # buffers must travel too
    model[1].num_batches_tracked += 7
    return model


def same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip(tmp_path):
    source, target = trained(0), trained(1)
    assert not same(source, target)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    load_checkpoint(target, tmp_path / "w.pt")
    assert same(source, target)


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_wrapped_state_dict(tmp_path, key):
    source, target = trained(0), trained(1)
    extra = {"epoch": 3, "optimizer": torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9).state_dict()}
    torch.save({key: source.state_dict(), **extra}, tmp_path / "w.pt")
    load_checkpoint(target, tmp_path / "w.pt")
    assert same(source, target)


def test_another_architecture_names_the_keys(tmp_path):
    torch.save(trained().state_dict(), tmp_path / "w.pt")
    target = other_net()
    target(torch.zeros(1, 1, 5, 5))  # materialise the lazy layer
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ConfigError) as info:
        load_checkpoint(target, tmp_path / "w.pt")
    message = str(info.value)
    assert "w.pt does not fit Sequential" in message and "\n" not in message
    assert "2 missing key(s) (3.weight, 3.bias)" in message
    assert ("7 unexpected key(s) (1.weight, 1.bias, 1.running_mean, 1.running_var, and 3 more)"
            in message)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing loaded


def test_size_mismatch_names_both_shapes(tmp_path):
    torch.save(trained().state_dict(), tmp_path / "w.pt")
    target = net(classes=5)
    with pytest.raises(ConfigError, match=r"2 size mismatch\(es\) \(5\.weight: checkpoint 10x4, model 5x4, "
                                          r"5\.bias: checkpoint 10, model 5\)"):
        load_checkpoint(target, tmp_path / "w.pt")


def test_code_in_a_pickle_is_refused_unread(tmp_path):
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(RunFileError, match=r"evil\.pt was refused by the safe \(weights-only\) loader \("
                                           r"it asks to import .*mark.*refused unread"):
        load_checkpoint(net(), tmp_path / "evil.pt")
    assert RAN == []


def test_not_a_torch_file(tmp_path):
    (tmp_path / "notes.pt").write_text("these are not weights")
    with pytest.raises(RunFileError, match=r"notes\.pt was refused by the safe \(weights-only\) loader"):
        load_checkpoint(net(), tmp_path / "notes.pt")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(RunFileError, match=r"list\.pt holds list, not a state_dict"):
        load_checkpoint(net(), tmp_path / "list.pt")
    torch.save({"epoch": 3, "weights": {"a": 1}}, tmp_path / "dict.pt")
    with pytest.raises(RunFileError, match=r"holds a dict with keys 'epoch', 'weights', not a state_dict"):
        load_checkpoint(net(), tmp_path / "dict.pt")


def test_missing_file(tmp_path):
    with pytest.raises(RunFileError, match=r"checkpoint not found: .*nowhere\.pt"):
        load_checkpoint(net(), tmp_path / "nowhere.pt")
    with pytest.raises(RunFileError, match="could not be read"):
        file_digest(tmp_path / "nowhere.pt")


def test_digest_follows_the_bytes(tmp_path):
    torch.save(trained(0).state_dict(), tmp_path / "w.pt")
    first = file_digest(tmp_path / "w.pt")
    assert len(first) == 16 and int(first, 16) >= 0
    shutil.copyfile(tmp_path / "w.pt", tmp_path / "copy.pt")
    assert file_digest(tmp_path / "copy.pt") == first
    torch.save(net(classes=5).state_dict(), tmp_path / "w.pt")  # another size: the memo cannot answer
    assert file_digest(tmp_path / "w.pt") != first
