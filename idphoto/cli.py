"""The ``idphoto`` command: the embedded default (in-process pipeline, local files)."""

from __future__ import annotations

import argparse
import sys

from config.settings import Settings

EXIT_OK = 0
EXIT_USAGE = 2


def _cmd_models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from idphoto.modelfetch import ModelFetchError, fetch

    try:
        paths = fetch(settings.models_dir)
    except ModelFetchError as exc:
        print(f"error: models: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idphoto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="manage the model files")
    msub = models.add_subparsers(dest="models_command", required=True)
    fetch = msub.add_parser("fetch", help="fetch and checksum the models (idempotent)")
    fetch.set_defaults(func=_cmd_models_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
