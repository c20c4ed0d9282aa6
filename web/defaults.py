"""Honest defaults: the development secrets announce themselves, and production refuses them.

The default ``secret_key`` signs session cookies and local download links; the default Flower
login (``admin``/``admin``) opens the task monitor. Both are fine on a laptop and wrong anywhere
else. Every web process, ``idphoto serve`` and ``idphoto flower`` call `check_defaults`: it logs
a loud warning per default in use, and with ``env="production"`` (``IDPHOTO_ENV``) raises
`InsecureDefaults` so that the process does not start.
"""

from __future__ import annotations

import logging

from config.settings import Settings

logger = logging.getLogger("idphoto.web")

_DEFAULTS = Settings()


class InsecureDefaults(RuntimeError):
    """Production settings still hold a development default secret."""


def environment(settings: Settings) -> str:
    """``development`` or ``production``, from ``Settings.env`` (``IDPHOTO_ENV``, read by
    ``Settings.from_env`` only: the web layer never reads the environment itself)."""
    return str(settings.env or "").strip().lower() or "development"


def insecure_defaults(settings: Settings, *, secret: bool = True, flower: bool = True) -> list[str]:
    """What in ``settings`` is still a published development default, in plain words."""
    found = []
    if secret and settings.secret_key == _DEFAULTS.secret_key:
        found.append(
            "IDPHOTO_SECRET_KEY is the development default: anyone can forge session cookies "
            "and download links. Set a long random value."
        )
    if flower and (settings.flower_user, settings.flower_password) == (
        _DEFAULTS.flower_user,
        _DEFAULTS.flower_password,
    ):
        found.append(
            "Flower's login is the default admin/admin: anyone who reaches it can see and "
            "control the task queue. Set IDPHOTO_FLOWER_USER and IDPHOTO_FLOWER_PASSWORD."
        )
    return found


def check_defaults(settings: Settings, *, secret: bool = True, flower: bool = True) -> list[str]:
    """Warn loudly about each default in use; raise `InsecureDefaults` in production."""
    found = insecure_defaults(settings, secret=secret, flower=flower)
    if not found:
        return found
    if environment(settings) == "production":
        raise InsecureDefaults(
            "IDPHOTO_ENV=production refuses to start with development defaults:\n  - "
            + "\n  - ".join(found)
        )
    for text in found:
        logger.warning("!!! INSECURE DEFAULT: %s", text)
    return found
