"""CLI verbs: ``serve``, ``demo``, ``check-config``. Nothing else lives here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proxy.settings import ConfigError, Settings, load_settings

EXIT_BAD_CONFIG = 2


def _load(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        print("cognito-gate: invalid configuration:", file=sys.stderr)
        for line in exc.lines:
            print(f"  - {line}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from proxy.app import build_app
    from proxy.observe import setup_logging

    settings = _load(args.config)
    setup_logging(settings.log)
    host, port = settings.listen_address
    web.run_app(build_app(settings), host=host, port=port, access_log=None, print=None)


def _check_config(args: argparse.Namespace) -> None:
    settings = _load(args.config)
    print(
        f"configuration OK: upstream {settings.upstream.url}, pool "
        f"{settings.cognito.user_pool_id}, flow {settings.cognito.auth_flow}, "
        f"store {settings.session.store_url.split('://')[0]}://"
    )


def _demo(args: argparse.Namespace) -> None:
    from proxy.demo import run_demo

    run_demo(listen=args.listen, cognito=args.cognito)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cognito-gate",
        description="Authenticating reverse proxy for apps behind an Amazon Cognito user pool.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    serve = verbs.add_parser("serve", help="run the proxy (production entry point)")
    serve.add_argument("--config", type=Path, help="YAML settings file; GATE_* env vars win")
    serve.set_defaults(run=_serve)
    check = verbs.add_parser("check-config", help="validate the settings; exit 2 if invalid")
    check.add_argument("--config", type=Path, help="YAML settings file; GATE_* env vars win")
    check.set_defaults(run=_check_config)
    demo = verbs.add_parser("demo", help="local Cognito, demo app and proxy; no AWS, no Redis")
    demo.add_argument("--listen", default="127.0.0.1:8080", help="proxy address (HOST:PORT)")
    demo.add_argument(
        "--cognito",
        choices=("double", "moto"),
        default="double",
        help="local Cognito: the strict double (every challenge) or moto (plain users only)",
    )
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
