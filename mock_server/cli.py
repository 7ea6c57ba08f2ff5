"""``zammad-cti``: serve the mock, check a target, report, simulate a PBX."""

from __future__ import annotations

import sys

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zammad-cti")
def main() -> None:
    """Contract tests and a faithful mock for Zammad's Generic CTI push API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; keep 127.0.0.1 unless a PBX elsewhere must reach it.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON or YAML configuration (default: the documented Munich/Berlin one).")
@click.option("--token", help="Override the configuration's token.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Worker threads.")
def serve(host: str, port: int, config_path: str | None, token: str | None, threads: int) -> None:
    """Run the mock under gunicorn and print the endpoint URL to paste into a PBX."""
    from .app import create_app
    from .server import run_gunicorn
    from .state import mock_state
    from .zammad.config import ConfigError

    try:
        app = create_app({"CTI_CONFIG": config_path, "TOKEN": token})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding {host}: anyone who can reach it and knows the token can push calls", err=True)
    config = mock_state(app).config
    shown_host = f"[{host}]" if ":" in host else host

    def announce() -> None:
        base = f"http://{shown_host}:{port}"
        click.echo(f"zammad-cti mock {__version__} listening on {base}")
        click.echo(f"  CTI endpoint (paste into your PBX): {base}/api/v1/cti/{config.token}")
        click.echo(f"  caller log:                         {base}/api/v1/cti/log")
        click.echo(f"  admin API:                          {base}/__admin/health")
        click.echo("Stop with Ctrl-C.")
        sys.stdout.flush()

    run_gunicorn(app, host, port, threads=threads, on_ready=announce)
