"""Installing weights: download + verify + atomic install, offline import, corrupt and unsafe zips."""

import io
import zipfile

import pytest

from segtool.errors import ArchiveError, ChecksumMismatchError, SegtoolError, WeightsNotFoundError
from segtool.registry import InputResampling, LabelExport, load_registry
from segtool.store import WeightsStore
from segtool.weights import ensure_task, import_zip

RESULT = "Dataset004_Hippocampus/nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"
RESULT_TS = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"


def test_task_weights_download_and_install(http_server, hippocampus_model_zip, hippocampus_model_sha256,
                                           make_registry, tmp_path):
    base, state = http_server
    state.files["hippo.zip"] = hippocampus_model_zip.read_bytes()
    registry = load_registry(make_registry(f"{base}/hippo.zip", hippocampus_model_sha256))
    store = WeightsStore(tmp_path / "weights")
    [(entry, path)] = ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    assert path == store.root / RESULT
    assert (path / "fold_0" / "checkpoint_final.pth").is_file()
    record = store.records()["Dataset004_Hippocampus"]
    assert record.verified and record.sha256 == hippocampus_model_sha256
    assert store.verify("Dataset004_Hippocampus") == []
    assert list((store.root / "downloads").glob("*.zip")) == []
    ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    assert len(state.log) == 1  # installed once, then reused


def test_unknown_hash_is_recorded_as_unverified(http_server, hippocampus_model_zip, hippocampus_model_sha256,
                                                make_registry, tmp_path):
    base, state = http_server
    state.files["hippo.zip"] = hippocampus_model_zip.read_bytes()
    registry = load_registry(make_registry(f"{base}/hippo.zip", None))
    store = WeightsStore(tmp_path / "weights")
    ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    record = store.records()["Dataset004_Hippocampus"]
    assert not record.verified and record.sha256 == hippocampus_model_sha256


def test_missing_weights_without_download_is_a_clear_error(make_registry, tmp_path):
    registry = load_registry(make_registry("http://127.0.0.1:9/none.zip", None))
    with pytest.raises(WeightsNotFoundError, match="segtool download"):
        ensure_task(registry.task("hippo"), "default", registry=registry, store=WeightsStore(tmp_path),
                    allow_download=False)


def assert_nothing_installed(store: WeightsStore) -> None:
    assert store.records() == {}
    leftovers = [p.name for p in store.root.iterdir() if p.name not in ("downloads", "installed.json.lock")]
    assert leftovers == []


def test_corrupt_zip_installs_nothing(http_server, make_registry, tmp_path):
    base, state = http_server
    state.files["hippo.zip"] = b"PK\x03\x04 this is not really a zip" * 100
    registry = load_registry(make_registry(f"{base}/hippo.zip", None))
    store = WeightsStore(tmp_path / "weights")
    with pytest.raises(ArchiveError, match="not a valid zip"):
        ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    assert_nothing_installed(store)


def test_zip_slip_archive_is_refused_before_writing(http_server, make_registry, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{RESULT}/plans.json", "{}")
        zf.writestr("../../escaped.txt", "owned")
    base, state = http_server
    state.files["hippo.zip"] = buffer.getvalue()
    registry = load_registry(make_registry(f"{base}/hippo.zip", None))
    store = WeightsStore(tmp_path / "home" / "weights")
    with pytest.raises(ArchiveError, match="escape"):
        ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert_nothing_installed(store)


def test_zip_without_the_model_files_is_refused(http_server, make_registry, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{RESULT}/plans.json", "{}")
    base, state = http_server
    state.files["hippo.zip"] = buffer.getvalue()
    registry = load_registry(make_registry(f"{base}/hippo.zip", None))
    store = WeightsStore(tmp_path / "weights")
    with pytest.raises(ArchiveError, match="missing .*dataset.json"):
        ensure_task(registry.task("hippo"), "default", registry=registry, store=store)
    assert_nothing_installed(store)


def test_import_recognises_totalsegmentator_zip_by_folder_name(nnunet_reference_dir, tmp_path):
    archive = nnunet_reference_dir / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
    registry, store = load_registry(), WeightsStore(tmp_path)
    [entry] = import_zip(archive, registry=registry, store=store)
    assert entry in registry.task("total").models("fast")
    assert store.is_installed(entry)
    assert (store.model_path(entry) / "fold_0" / "checkpoint_final.pth").is_file()
    checkpoint = store.model_path(entry) / "fold_0" / "checkpoint_final.pth"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])
    assert store.verify(entry.name) == [f"{entry.name}/{RESULT_TS}/fold_0/checkpoint_final.pth: modified since install"]
    assert store.remove(entry.name) and not store.is_installed(entry)


def test_import_by_sha256_and_mismatch(hippocampus_model_zip, hippocampus_model_sha256, make_registry, tmp_path):
    registry = load_registry(make_registry("http://unused", hippocampus_model_sha256, name="renamed_model"))
    with pytest.raises(ArchiveError, match="does not hold model 'renamed_model'"):
        import_zip(hippocampus_model_zip, registry=registry, store=WeightsStore(tmp_path / "a"))
    registry = load_registry(make_registry("http://unused", "f" * 64))
    with pytest.raises(ChecksumMismatchError, match="registry expects fff"):
        import_zip(hippocampus_model_zip, registry=registry, store=WeightsStore(tmp_path / "b"))
    unknown = tmp_path / "other.zip"
    with zipfile.ZipFile(unknown, "w") as zf:
        zf.writestr("SomethingElse/x.txt", "x")
    with pytest.raises(ArchiveError, match="matches no model"):
        import_zip(unknown, registry=registry, store=WeightsStore(tmp_path / "c"))


@pytest.mark.parametrize("text, message", [
    ("{not json", "invalid weights registry"),
    ('{"tasks": {"t": {"modality": "CT", "labels": {"1": "a"}}}}', "missing field 'modes'"),
    ('{"tasks": {"t": {"modality": "CT", "labels": {"1": "a"}, "modes": {"slow": []}}}}', "'slow'"),
    ('{"tasks": {"t": {"modality": "CT", "labels": {"1": "a"}, "modes": {}, "cleanup": {"keep_largest": ["b"]}}}}',
     "cleanup names classes it does not have: b"),
    ('{"tasks": {"t": {"modality": "MR", "labels": {"1": "a"}, "modes": {"default": [{"name": "m", "url": "m.zip", '
     '"labels": {"1": "a"}, "shift_tta": 2.5}]}}}}', "model 'm': shift_tta must be a whole number of voxels >= 0"),
])
def test_broken_registry_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "weights_registry.json"
    path.write_text(text)
    with pytest.raises(SegtoolError, match=message):
        load_registry(path)


def test_totalsegmentators_sub_tasks_crop_as_it_does():
    # TotalSegmentator 2.18: a sub-task's region is found by total's 6 mm model (3 mm with --robust_crop or where the
    # sub-task asks for it), total_mr's 3 mm one for MR, the body task's 6 mm one for the trunk; 20 mm around it
    registry = load_registry()

    def finder(name: str, robust: bool = False) -> tuple[str, str] | None:
        found = registry.crop_finder(registry.task(name), robust)
        return None if found is None else (found[0].name, found[1].value)

    assert finder("lung_vessels") == finder("lung_vessels", robust=True) == ("total", "fast")
    assert finder("liver_vessels") == ("total", "fastest") and finder("liver_vessels", robust=True) == ("total", "fast")
    assert finder("liver_segments_mr") == ("total_mr", "fast") and finder("abdominal_muscles") == ("body", "fast")
    assert finder("breasts") is None  # the whole scan
    liver_vessels = registry.task("liver_vessels")
    assert liver_vessels.crop.classes == ("liver",) and liver_vessels.crop.margin_mm == 20.0
    (vessels,) = registry.task("lung_vessels").models("default")
    assert vessels.spacing_mm == (0.703125, 0.703125, 1.0) and vessels.label_export is LabelExport.NEAREST
    (effusion,) = registry.task("pleural_pericard_effusion").models("default")
    assert effusion.folds is None and effusion.input_resampling is InputResampling.PREDICTOR  # nnU-Net's own
    part1, part2 = registry.task("headneck_muscles").models("default")
    assert {*part1.labels.values(), *part2.labels.values()} == set(registry.task("headneck_muscles").class_names)
