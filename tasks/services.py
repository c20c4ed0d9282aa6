"""Per-process services: blob store, job store and (on GPU workers) the models.

One `Services` per (process, settings): built lazily, so nothing connects at import time, and
keyed by the process id, so a forked child never reuses its parent's S3 client or sockets.

Workers load their models in ``worker_process_init`` (see `tasks.app`) by calling
`Services.load_models` in each pool child: once per process, never per task, and never in the
parent before the fork. The web app and the CLI build the same object on first use.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from config.settings import Settings
from storage import BlobStore, make_store
from tasks.jobstore import JobStore, make_jobstore

if TYPE_CHECKING:
    from pipeline.detect import FaceDetector
    from pipeline.landmarks import Landmarker
    from pipeline.segment import Segmenter

logger = logging.getLogger(__name__)


class Services:
    """What a task or an API call needs, built once per process for one `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._store: BlobStore | None = None
        self._jobstore: JobStore | None = None
        self._detector: FaceDetector | None = None
        self._segmenter: Segmenter | None = None
        self._landmarker: Landmarker | None = None
        self._store_ready = False
        self.ort_threads = settings.ort_threads

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = make_store(self.settings)
        return self._store

    def ready_store(self) -> BlobStore:
        """The store after ``ensure_ready`` (bucket, lifecycle rules) has run in this process."""
        store = self.store
        if not self._store_ready:
            store.ensure_ready()
            self._store_ready = True
        return store

    @property
    def jobstore(self) -> JobStore:
        if self._jobstore is None:
            with self._lock:
                if self._jobstore is None:
                    self._jobstore = make_jobstore(self.settings)
        return self._jobstore

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = self._load_detector()
        return self._detector

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            with self._lock:
                if self._segmenter is None:
                    self._segmenter = self._load_segmenter()
        return self._segmenter

    @property
    def landmarker(self) -> Landmarker:
        """The dense face-landmark model (CPU, one thread: a few ms per face)."""
        if self._landmarker is None:
            with self._lock:
                if self._landmarker is None:
                    from pipeline.landmarks import load_landmarker

                    self._landmarker = load_landmarker(self.settings.models_dir, threads=1)
        return self._landmarker

    @property
    def models_loaded(self) -> bool:
        return (
            self._detector is not None
            and self._segmenter is not None
            and self._landmarker is not None
        )

    def load_models(self, threads: int | None = None) -> None:
        """Load the face detector and the segmenter now (a GPU worker's pool child at start)."""
        if threads is not None:
            self.ort_threads = threads
        _ = self.detector, self.segmenter, self.landmarker

    def _load_detector(self) -> FaceDetector:
        from pipeline.detect import FaceDetector
        from pipeline.runtime import providers_for

        # BlazeFace costs milliseconds: one thread, CPU (a GPU round trip would cost more).
        return FaceDetector.from_dir(
            self.settings.models_dir, providers=providers_for("cpu"), threads=1
        )

    def _load_segmenter(self) -> Segmenter:
        from pipeline.segment import load_segmenter

        s = self.settings
        segmenter = load_segmenter(
            s.segment_model,
            models_dir=s.models_dir,
            device=s.device,
            threads=self.ort_threads or os.cpu_count() or 1,
            cuda_device_id=s.cuda_device_id,
            cuda_mem_limit_mb=s.cuda_mem_limit_mb,
            spinning=s.ort_spinning,
            precision=s.segment_precision,
        )
        info = segmenter.describe()
        logger.info(
            "loaded %s on %s (pid %d, %d threads): %s %s (%s)",
            s.segment_model,
            segmenter.provider,
            os.getpid(),
            self.ort_threads,
            info.get("file", s.segment_model),
            info.get("precision", ""),
            info.get("reason", ""),
        )
        return segmenter

    def segment_choice(self) -> dict[str, str]:
        """What a segment worker with these settings runs on this host (loads nothing): for
        /readyz and the worker's info in Flower."""
        from pipeline.runtime import DEFAULT_MODEL, choose_isnet

        s = self.settings
        if s.segment_model != DEFAULT_MODEL:
            return {"model": s.segment_model, "precision": "as fetched"}
        return choose_isnet(s.models_dir, precision=s.segment_precision, device=s.device).as_dict()


_CACHE: dict[tuple[int, Settings], Services] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 8


def services_for(settings: Settings) -> Services:
    """This process's `Services` for ``settings`` (a small cache: the web app calls this per
    request, and rebuilding S3 clients or Redis pools per request would be slow)."""
    key = (os.getpid(), settings)
    found = _CACHE.get(key)
    if found is not None:
        return found
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            found = _CACHE[key] = Services(settings)
        return found
