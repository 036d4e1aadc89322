"""A local HTTP server with Range support and injectable faults, and real model zips to serve."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HIPPOCAMPUS_RESULT = "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"


@dataclass
class ServerState:
    """Files served and faults to inject; ``log`` records (path, Range header) of every request."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    cut_after: int | None = None
    chunk_delay: float = 0.0
    log: list[tuple[str, str | None]] = field(default_factory=list)


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.log.append((self.path, self.headers.get("Range")))
            if state.fail_next:
                self.send_error(state.fail_next.pop(0))
                return
            body = state.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:]
            if state.cut_after is not None:
                payload, state.cut_after = payload[: state.cut_after], None
            for offset in range(0, len(payload), 1 << 16):
                self.wfile.write(payload[offset : offset + (1 << 16)])
                time.sleep(state.chunk_delay)

    return Handler


@pytest.fixture()
def http_server():
    """Serve ``state.files`` on 127.0.0.1; yields (base_url, state)."""
    state = ServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def hippocampus_model_zip(nnunet_reference_dir, tmp_path_factory) -> Path:
    """The genuine nnU-Net hippocampus result folder zipped as TotalSegmentator ships models."""
    source = nnunet_reference_dir / "Dataset004_Hippocampus" / HIPPOCAMPUS_RESULT
    archive = tmp_path_factory.mktemp("zips") / "Dataset004_Hippocampus.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zf.write(path, f"Dataset004_Hippocampus/{HIPPOCAMPUS_RESULT}/{path.relative_to(source)}")
    return archive


@pytest.fixture(scope="session")
def hippocampus_model_sha256(hippocampus_model_zip) -> str:
    """sha256 of the hippocampus model zip, computed independently of segtool."""
    return hashlib.sha256(hippocampus_model_zip.read_bytes()).hexdigest()


@pytest.fixture()
def make_registry(tmp_path):
    """Write a registry with one task ``hippo`` whose model is at ``url``; return its path.

    Its model runs without test-time mirroring unless ``mirroring`` (eight times faster on the CPU; segtool's own
    default, the registry's setting, is checked with mirroring on). ``crop`` (a registry ``crop`` without its task)
    adds a sub-task ``hippo_part`` run on the region that ``hippo``'s models find; ``model_sizes`` (size -> plans)
    the other sizes ``hippo`` comes in.
    """

    def make(url: str, sha256: str | None, name: str = "Dataset004_Hippocampus", *, fastest: bool = False,
             fast: bool = False, modality: str = "MR", body: bool = False,
             input_resampling: str = "predictor", spacing_mm: float | list[float] = 1.0,
             label_export: str = "resample", mirroring: bool = False, shift_tta: int = 0, crop: dict | None = None,
             model_sizes: dict[str, str] | None = None) -> Path:
        model = {"name": name, "url": url, "sha256": sha256, "size": None, "format": "nnunetv2",
                 "trainer": "nnUNetTrainer_refShort", "plans": "nnUNetPlans", "configuration": "3d_fullres",
                 "folds": [0], "spacing_mm": spacing_mm, "step_size": 0.5, "mirroring": mirroring, "precision": "fp32",
                 "labels": {"1": "anterior", "2": "posterior"}, "input_resampling": input_resampling,
                 "label_export": label_export, "shift_tta": shift_tta}
        registry = {"format_version": 1, "tasks": {"hippo": {
            "modality": modality, "labels": {"1": "anterior", "2": "posterior"},
            "modes": {"default": [model], **({"fastest": [model]} if fastest else {}),
                      **({"fast": [model]} if fast else {})}, "model_sizes": model_sizes or {}}}}
        if body:  # the same model stands in for the body task: what it finds is the region to crop to
            body_labels = {"1": "body_trunc", "2": "body_extremities"}
            body_model = {**model, "labels": body_labels}
            registry["tasks"]["body"] = {"modality": modality, "labels": body_labels,
                                         "modes": {"fast": [body_model], "default": [body_model]},
                                         "cleanup": {"keep_largest": ["body_trunc"],  # as the real body task's
                                                     "min_component_mm3": {"body_extremities": 50000}}}
        if crop:  # a sub-task ``hippo_part``: the same model, run on the region of hippo's classes that ``crop`` names
            registry["tasks"]["hippo_part"] = {"modality": modality, "labels": {"1": "anterior", "2": "posterior"},
                                               "modes": {"default": [model]}, "crop": {"task": "hippo", **crop}}
        path = tmp_path / "weights_registry.json"
        path.write_text(json.dumps(registry))
        return path

    return make


@pytest.fixture()
def hippo_registry(http_server, hippocampus_model_zip, hippocampus_model_sha256, make_registry):
    """A function that serves the reference hippocampus model locally and writes a registry (``make_registry``'s
    options) whose task ``hippo`` downloads it; it returns the registry's path."""

    def write(**options) -> Path:
        base, state = http_server
        state.files["hippo.zip"] = hippocampus_model_zip.read_bytes()
        return make_registry(f"{base}/hippo.zip", hippocampus_model_sha256, **options)

    return write


@pytest.fixture()
def serve_hippo(hippo_registry, http_server, tmp_path, monkeypatch):
    """A function that points segtool's CLI context at a registry (``make_registry``'s options) whose task ``hippo``
    is served locally; it returns the server's state."""
    from segtool.cli import context
    from segtool.registry import load_registry

    def serve(**options) -> ServerState:
        registry = load_registry(hippo_registry(**options))
        monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
        monkeypatch.setattr(context, "registry", lambda: registry)
        return http_server[1]

    return serve


@pytest.fixture()
def hippo_cli(serve_hippo):
    """segtool's CLI context pointed at a registry whose task ``hippo`` is served locally; returns the state."""
    return serve_hippo()


@pytest.fixture()
def total_fast_installed(nnunet_reference_dir, tmp_path, monkeypatch):
    """SEGTOOL_HOME with TotalSegmentator's 'total --fast' reference zip imported (offline)."""
    from segtool.registry import load_registry
    from segtool.store import WeightsStore
    from segtool.weights import import_zip

    home = tmp_path / "home"
    monkeypatch.setenv("SEGTOOL_HOME", str(home))
    archive = nnunet_reference_dir / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
    import_zip(archive, registry=load_registry(), store=WeightsStore(home / "weights"))
    return home
