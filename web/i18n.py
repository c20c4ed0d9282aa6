"""Languages of the pages: English and Chinese, with Flask-Babel and gettext catalogues.

The language of a request is, in this order: ``?lang=`` in the address (the switcher's links,
remembered in a cookie for a year), the ``lang`` cookie, then the best match of the browser's
``Accept-Language``. Strings live in the templates and in Python as ``gettext`` calls; their
translations in ``web/translations/<lang>/LC_MESSAGES/messages.po`` (compiled ``.mo`` beside it,
committed so that a fresh clone works without a build step; ``tests/web/test_pages.py`` fails when
the two disagree). Refresh the catalogue after changing strings with::

    pybabel extract -F web/babel.cfg -o web/translations/messages.pot web
    pybabel update -i web/translations/messages.pot -d web/translations
    pybabel compile -d web/translations

Country names come from Babel's locale data (CLDR), spec names from the spec's own ``name`` and
``name_zh`` fields, colour names from the catalogue.
"""

from __future__ import annotations

from typing import Any

from babel import Locale
from flask import Flask, Response, g, request
from flask_babel import Babel, get_locale, lazy_gettext

#: The languages offered, in the switcher's order, with their own names.
LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文"}
DEFAULT_LANGUAGE = "en"
COOKIE = "lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600

#: Where a language starts the form: the document most visitors of that language come for.
DEFAULT_SPEC = {"en": "us-passport", "zh": "cn-1inch"}

#: Names that are no territory in CLDR.
_REGION_NAMES = {"INT": lazy_gettext("International"), "EU": lazy_gettext("Schengen area")}

#: Background colour names (config.colours keys) as shown to people.
COLOUR_NAMES = {
    "white": lazy_gettext("white"),
    "off-white": lazy_gettext("off-white"),
    "cream": lazy_gettext("cream"),
    "light-grey": lazy_gettext("light grey"),
    "light-blue": lazy_gettext("light blue"),
    "sky-blue": lazy_gettext("sky blue"),
    "blue": lazy_gettext("blue"),
    "dark-blue": lazy_gettext("dark blue"),
    "red": lazy_gettext("red"),
    "transparent": lazy_gettext("transparent"),
    "custom": lazy_gettext("custom colour"),
}


def _normalise(code: str | None) -> str | None:
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def select_language() -> str:
    """The language of this request (see the module docstring)."""
    chosen = _normalise(request.args.get("lang"))
    if chosen:
        g.set_language_cookie = chosen
        return chosen
    return (
        _normalise(request.cookies.get(COOKIE))
        or request.accept_languages.best_match(list(LANGUAGES))
        or DEFAULT_LANGUAGE
    )


def language() -> str:
    """The current request's language code (``en`` or ``zh``)."""
    return str(get_locale() or DEFAULT_LANGUAGE).split("_")[0]


def country_name(code: str) -> str:
    """A country (ISO 3166 alpha-2, or INT/EU) in the current language."""
    if code in _REGION_NAMES:
        return str(_REGION_NAMES[code])
    return Locale.parse(language()).territories.get(code, code)


def country_names_all(code: str) -> list[str]:
    """The country's name in every offered language (for search in either)."""
    if code in _REGION_NAMES:
        from flask_babel import force_locale

        names = []
        for lang in LANGUAGES:
            with force_locale(lang):
                names.append(str(_REGION_NAMES[code]))
        return names
    return [Locale.parse(lang).territories.get(code, code) for lang in LANGUAGES]


def colour_name(name: str) -> str:
    """A background colour's name in the current language (a hex value stays as it is)."""
    label = COLOUR_NAMES.get(name)
    return str(label) if label is not None else name.replace("-", " ")


def spec_name(spec: Any) -> str:
    """The spec's name in the current language (``name_zh`` in Chinese where it has one)."""
    if language() == "zh":
        return getattr(spec, "name_zh", "") or spec.name
    return spec.name


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    Babel(app, locale_selector=select_language)

    @app.after_request
    def _remember(response: Response) -> Response:
        chosen = g.get("set_language_cookie")
        if chosen:
            response.set_cookie(
                COOKIE, chosen, max_age=COOKIE_MAX_AGE_S, samesite="Lax", httponly=True
            )
        if request.accept_languages or request.args.get("lang") or request.cookies.get(COOKIE):
            response.vary.add("Accept-Language")
            response.vary.add("Cookie")
        return response

    @app.context_processor
    def _language_context() -> dict[str, Any]:
        return {
            "lang": language(),
            "languages": LANGUAGES,
            "colour_name": colour_name,
            "country_name": country_name,
            "spec_name": spec_name,
        }
