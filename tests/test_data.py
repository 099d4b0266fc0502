import os
import pickle

import numpy as np
import pytest
import torch

from deadwood import ConfigError, DatasetFileError, DatasetNotFound, load_dataset
from deadwood.data.datasets import dataset_names

from fakedata import write_cifar10, write_mnist, write_svhn


@pytest.mark.parametrize("name,shape,classes", [("digits", (1, 8, 8), 10), ("moons", (2,), 2)])
def test_embedded_sets_are_in_unit_range_and_split_by_seed(name, shape, classes):
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert tuple(train.x.shape[1:]) == shape and train.x.dtype == torch.float32
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0
    assert set(train.y.tolist()) == set(range(classes))
    # stratified: class proportions of train and test agree within 2 points
    p_tr = torch.bincount(train.y, minlength=classes).float() / len(train)
    p_te = torch.bincount(test.y, minlength=classes).float() / len(test)
    assert torch.allclose(p_tr, p_te, atol=0.02)
    again, other = load_dataset(name, "train", seed=0), load_dataset(name, "train", seed=1)
    assert torch.equal(again.x, train.x) and not torch.equal(other.x, train.x)


def test_digits_train_and_test_do_not_overlap():
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    rows = {r.numpy().tobytes() for r in tr.x}
    dup = sum(r.numpy().tobytes() in rows for r in te.x)
    assert len(tr) + len(te) == 1797 and dup < 5  # a handful of digits are pixel-identical in the source


def test_mnist_reads_torchvision_layout(tmp_path):
    write_mnist(tmp_path)
    ds = load_dataset("mnist", "train", data_dir=tmp_path)
    assert ds.x.shape == (40, 1, 28, 28) and float(ds.x.max()) <= 1.0
    assert load_dataset("mnist", "test", data_dir=tmp_path).y.tolist() == [i % 10 for i in range(20)]


def _damage(path, how):
    data = path.read_bytes()
    path.write_bytes({"garbage": bytes(range(7, 107)), "empty": b"", "truncated": data[:-5],
                      "wrong shape": data[:8] + (27).to_bytes(4, "big") + data[12:]}[how])


GARBAGE = [("train-images-idx3-ubyte", "garbage", "is not an MNIST image file: it starts with 0x0708090a"),
           ("train-images-idx3-ubyte", "empty", "is not an MNIST image file: it holds 0 bytes"),
           ("train-images-idx3-ubyte", "truncated", "is damaged: its header announces 40 images"),
           ("train-images-idx3-ubyte", "wrong shape", "holds images of shape (27, 28), expected (28, 28)"),
           ("train-labels-idx1-ubyte", "garbage", "is not an MNIST label file"),
           ("train-labels-idx1-ubyte", "truncated", "is damaged: its header announces 40 labels")]


@pytest.mark.parametrize("file,how,message", GARBAGE)
def test_garbage_under_mnist_names_names_the_file_and_the_fault(tmp_path, file, how, message):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / file
    _damage(path, how)
    with pytest.raises(DatasetFileError) as e:
        load_dataset("mnist", "train", data_dir=tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and message in msg and "\n" not in msg and "--" not in msg


def test_mnist_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, n_train=40)
    write_mnist(tmp_path / "other", n_train=30)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "train-labels-idx1-ubyte").write_bytes((tmp_path / "other/MNIST/raw/train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DatasetFileError, match="holds 40 images but .* holds 30 labels"):
        load_dataset("mnist", "train", data_dir=tmp_path)


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST")
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path)) == 20


def test_cifar10_reads_torchvision_layout(tmp_path):
    write_cifar10(tmp_path)
    ds = load_dataset("cifar10", "train", data_dir=tmp_path)
    assert ds.x.shape == (30, 3, 32, 32) and ds.y.tolist()[:6] == [0, 1, 2, 3, 4, 5]


def test_cifar10_batch_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": Evil(), "labels": [0]}, f)
    with pytest.raises(DatasetNotFound, match="could not be read: refusing to load"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    assert not marker.exists()


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    write_svhn(tmp_path)
    ds = load_dataset("svhn", "test", data_dir=tmp_path)
    assert ds.x.shape == (12, 3, 32, 32)
    assert ds.y.tolist()[:10] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "svhn"])
def test_missing_files_name_the_folder_and_the_files(tmp_path, name):
    with pytest.raises(DatasetNotFound) as e:
        load_dataset(name, "train", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path.resolve()) in msg and "expected" in msg and "\n" not in msg


def test_unknown_dataset_and_split_are_named():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'.*digits"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        load_dataset("digits", "val")
    assert {"digits", "moons", "mnist", "fashion-mnist", "cifar10", "svhn"} <= set(dataset_names())


@pytest.mark.parametrize("name,writer,file", [("cifar10", write_cifar10, "cifar-10-batches-py/test_batch"),
                                              ("svhn", write_svhn, "test_32x32.mat")])
def test_garbage_cifar_and_svhn_files_are_named(tmp_path, name, writer, file):
    writer(tmp_path)
    (tmp_path / file).write_bytes(bytes(range(256)) * 3)
    with pytest.raises(DatasetFileError) as e:
        load_dataset(name, "test", data_dir=tmp_path)
    msg = str(e.value)
    assert f"{tmp_path / file} could not be read: " in msg and "\n" not in msg and "--download" not in msg
