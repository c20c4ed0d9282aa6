"""Test launcher for a real worker: ``python -m tests.tasks.worker_main --queues gpu -c 1 -n X``.

Settings come from the environment (``IDPHOTO_*``) exactly as for ``idphoto worker``; with
``IDPHOTO_TEST_MSGLOG`` set, the worker's published message sizes are logged there first, and
with ``IDPHOTO_TEST_S3LOG`` its S3 calls (`tests.tasks.opslog`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from config.settings import Settings
from tasks.worker import run_worker
from tests.tasks import msglog, opslog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--hostname", default=None)
    args = parser.parse_args()
    log = os.environ.get("IDPHOTO_TEST_MSGLOG")
    if log:
        msglog.install(Path(log))
    s3log = os.environ.get("IDPHOTO_TEST_S3LOG")
    if s3log:
        opslog.install_s3(Path(s3log))
    run_worker(Settings.from_env(), args.queues.split(","), args.concurrency, args.hostname)


if __name__ == "__main__":
    main()
