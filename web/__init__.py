"""The web app: the upload form, the JSON API, local file links and operations endpoints.

``create_app(settings)`` builds one app from one `Settings` (``Settings.from_env()`` when none is
given, as under ``gunicorn 'web:create_app()'``). Each component installs itself with its own
``init_app(app)``: errors, languages, logging, security headers, rate limiting, metrics. The app's
one `tasks.services.Services` (`tasks.app.connect`) is built here and kept in its `AppState`;
every view passes it to the job layer. Nothing connects to a backend while the app is built.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import Settings
from tasks.app import CPU_QUEUE, GPU_QUEUE, connect
from web import errors, i18n, limits, logs, metrics, security
from web.admission import QueueGauge
from web.context import EXTENSION, AppState
from web.defaults import check_defaults

#: Room for the multipart envelope and the small form fields around the photo.
FORM_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    check_defaults(settings, flower=False)  # warns; raises under IDPHOTO_ENV=production
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxy_hops > 0:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )
    app_state = AppState(settings=settings, services=connect(settings))
    if settings.broker_url:
        app_state.gauge = QueueGauge(settings.broker_url, (GPU_QUEUE, CPU_QUEUE))
    app.extensions[EXTENSION] = app_state

    errors.init_app(app)
    i18n.init_app(app)
    logs.init_app(app)
    security.init_app(app)
    app_state.extras["limiter"] = limits.init_app(app)
    app_state.metrics = metrics.init_app(app, app_state.services.jobstore)

    from web import api, files, ops, ui

    app.register_blueprint(ui.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(ops.bp)
    return app


__all__ = ["create_app"]
