"""What a task or an API call needs: blob store, job store, the Celery app to send chains
through, and (on GPU workers and for checks) the models.

Wired explicitly, once per entry point, and passed down; there is no module-level cache:

- the web app: `web.create_app` builds one (`tasks.app.connect`) and keeps it on the app;
- a worker: `tasks.app.make_celery` builds one for its app, and each pool child replaces it
  with its own at ``worker_process_init`` (`tasks.startup`), so a forked child never reuses
  its parent's S3 client or sockets, and loads its models there: once per process, never per
  task, and never in the parent before the fork;
- the CLI builds one per command (its models, through the same loader a worker uses).

Each part is built on first use, so building a `Services` connects to nothing.
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
    from celery import Celery

    from pipeline.detect import FaceDetector
    from pipeline.landmarks import Landmarker
    from pipeline.segment import Segmenter

logger = logging.getLogger(__name__)


class Services:
    """What a task or an API call needs, built once per process for one `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: The Celery app that sends this process's chains (set by `tasks.app.make_celery`,
        #: which builds the app around these services).
        self.celery: Celery | None = None
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
            info.get("file", s.segment_model)
            + (f" + {info['fallback_file']}" if "fallback_file" in info else ""),
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
