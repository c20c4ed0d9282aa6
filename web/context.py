"""What one app instance holds: its settings and the services built from them (one
`tasks.services.Services`, wired by `web.create_app`: the blob store, the job store, the Celery
app that sends chains, the models of check mode).

Kept on ``app.extensions["idphoto"]`` (never in module globals), so several apps with different
settings can live in one process, as the tests do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from config.settings import Settings

if TYPE_CHECKING:
    from storage.interface import BlobStore
    from tasks.services import Services
    from web.admission import QueueGauge
    from web.metrics import Metrics

EXTENSION = "idphoto"


@dataclass
class AppState:
    settings: Settings
    services: Services
    metrics: Metrics | None = None
    gauge: QueueGauge | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> BlobStore:
        return self.services.store


def state(app: Flask | None = None) -> AppState:
    """The current (or given) app's `AppState`."""
    return (app or current_app).extensions[EXTENSION]


def settings() -> Settings:
    return state().settings


def services() -> Services:
    """The current app's services: what the job layer's calls take."""
    return state().services
