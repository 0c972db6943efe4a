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
    import os

    from proxy.observe import setup_logging
    from proxy.serve import run

    if args.workers is not None:
        os.environ["GATE_WORKERS"] = str(args.workers)  # the flag wins; workers inherit it
    settings = _load(args.config)
    setup_logging(settings.log)
    raise SystemExit(run(settings, args.config, worker=args.worker_index))


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


def _local_cognito(args: argparse.Namespace) -> None:
    from proxy.demo import run_local_cognito

    run_local_cognito(args.listen, args.env_file, args.public_url, args.cognito)


def _demo_app(args: argparse.Namespace) -> None:
    from proxy.demo import run_demo_app

    run_demo_app(args.listen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cognito-gate",
        description="Authenticating reverse proxy for apps behind an Amazon Cognito user pool.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    serve = verbs.add_parser("serve", help="run the proxy (production entry point)")
    serve.add_argument("--config", type=Path, help="YAML settings file; GATE_* env vars win")
    serve.add_argument(
        "--workers", type=int, help="worker processes sharing the port (GATE_WORKERS; default 1)"
    )
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
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
    local = verbs.add_parser(
        "local-cognito", help="(docker-compose demo) a seeded local Cognito; writes an env file"
    )
    local.add_argument(
        "--cognito",
        choices=("double", "moto"),
        default="double",
        help="the strict double (every challenge) or moto (plain users only)",
    )
    local.add_argument("--listen", default="0.0.0.0:4566")
    local.add_argument("--env-file", required=True, help="where to write GATE_COGNITO_* lines")
    local.add_argument("--public-url", required=True, help="how the proxy reaches this server")
    local.set_defaults(run=_local_cognito)
    app = verbs.add_parser("demo-app", help="(docker-compose demo) only the demo upstream app")
    app.add_argument("--listen", default="0.0.0.0:3000")
    app.set_defaults(run=_demo_app)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
