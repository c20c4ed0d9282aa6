"""The entry point of the ``celery`` command (``celery -A idphoto.celery_app flower``, as
``idphoto flower`` runs it): the app and its services, built from the environment when the
command loads this module. Workers start through ``idphoto worker`` (`tasks.worker`)."""

from __future__ import annotations

from config.settings import Settings
from tasks.app import make_celery

app = make_celery(Settings.from_env())
