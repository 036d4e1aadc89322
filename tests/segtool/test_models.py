"""ModelLoader: weights installed on first use, one Predictor per model and settings, device and precision."""

from __future__ import annotations

import pytest


@pytest.fixture()
def loader_for(hippo_registry, tmp_path):
    """A function that gives a ModelLoader for options (``SegmentOptions``' keywords) and the hippo entry of a registry
    (``make_registry``'s options) served locally."""
    from segtool import SegmentOptions
    from segtool.models import ModelLoader
    from segtool.registry import Mode, load_registry
    from segtool.store import WeightsStore

    def make(options: dict, **registry_options):
        registry = load_registry(hippo_registry(**registry_options))
        (entry,) = registry.task("hippo").models(Mode.DEFAULT)
        loader = ModelLoader(SegmentOptions(task="hippo", device="cpu", **options), registry=registry,
                             store=WeightsStore(tmp_path / "weights"), progress_for=lambda entry: None)
        return loader, entry

    return make


def test_a_model_downloads_once_and_loads_once_per_setting(loader_for, http_server):
    loader, entry = loader_for({"higher_order_resampling": True}, label_export="nearest")
    ((found, finder),) = loader.load((entry,))
    ((_, again),) = loader.load((entry,))
    ((_, own),) = loader.load((entry,), own=True)
    assert found is entry and again is finder  # the same model and settings: loaded once
    assert [path for path, _ in http_server[1].log] == ["/hippo.zip"]  # and fetched once
    # the task's own parts bring logits back with higher-order resampling: another export, so another Predictor
    assert finder.options.fast_export and not own.options.fast_export and own is not finder


@pytest.mark.parametrize(("tta", "expected"), [(None, (True, 6)), (True, (True, 6)), (False, (False, 0))])
def test_test_time_augmentation_is_the_entry_s_unless_the_options_say(loader_for, tta, expected):
    loader, entry = loader_for({"tta": tta}, mirroring=True, shift_tta=6)
    ((_, predictor),) = loader.load((entry,), own=True)
    assert (predictor.options.tta, predictor.options.shift_tta) == expected  # --no-tta turns mirroring and shifts off


def test_nnunet_precision_is_float32_on_the_cpu_and_autocast_on_cuda():
    from segtool.models import resolve_precision

    assert resolve_precision("nnunet", "cpu") == "fp32"
    assert resolve_precision("nnunet", "cuda:1") == "auto"
    assert resolve_precision("bf16", "cpu") == "bf16"


def test_totalsegmentator_device_names_mean_cuda_and_gpu_falls_back_to_the_cpu_with_a_warning(monkeypatch, caplog):
    import torch

    from segtool import SegmentOptions
    from segtool.errors import SegtoolError
    from segtool.models import resolve_device

    assert [SegmentOptions(device=d).device for d in ("GPU", "GPU:1", "cuda:2", "MPS")] == [
        "gpu", "gpu:1", "cuda:2", "mps"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and not caplog.records
    assert resolve_device("gpu") == "cpu" and "no CUDA GPU found: running on the CPU" in caplog.text
    assert resolve_device("gpu:1") == "cpu" and "no CUDA GPU 1 found: running on the CPU" in caplog.text
    with pytest.raises(SegtoolError, match="no CUDA GPU is available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(SegtoolError, match="no Apple GPU"):
        resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("gpu") == "cuda" and resolve_device("gpu:1") == "cuda:1"
    assert resolve_device("gpu:2") == "cpu"  # no such GPU: the CPU, as TotalSegmentator runs it
