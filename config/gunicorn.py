"""gunicorn's settings for the web app, one place for `idphoto serve`, the Dockerfile and
compose: ``gunicorn -c python:config.gunicorn --bind HOST:PORT "web:create_app()"``.

Slow clients: each connection is a gevent greenlet, which reads the request before the app sees
it, so a client that sends its request a byte a second (slowloris) holds a greenlet, not one of
a few threads. With gunicorn's threaded workers 2 x 4 threads were all it took to leave
``/healthz`` unanswered; with these, 64 such clients change nothing that a test can see
(tests/web/test_live.py). Requests still have a size cap (Flask's ``MAX_CONTENT_LENGTH``) and
the header limits below. Behind a buffering proxy (nginx, a cloud load balancer) they cost even
less.
"""

from __future__ import annotations

import os

worker_class = "gevent"
workers = int(os.environ.get("IDPHOTO_WEB_WORKERS", "2"))  # `idphoto serve --web-workers`
worker_connections = 1000  # open connections per worker, slow or not
timeout = 60  # a worker that does not answer its master's heartbeat for this long is replaced
graceful_timeout = 10  # in-flight requests finish within `idphoto serve`'s 15 s stop (GRACE_S)
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
loglevel = "warning"
