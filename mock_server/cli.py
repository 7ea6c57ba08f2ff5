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
@click.option("--journal", default=None, metavar="PATH",
              help="SQLite file for the caller log, journal and findings; ':memory:' keeps nothing. "
                   "[default: journal.sqlite3 in the user's data directory]")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; they share the caller log through the journal file.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
def serve(host: str, port: int, config_path: str | None, token: str | None, journal: str | None,
          workers: int, threads: int) -> None:
    """Run the mock under gunicorn and print the endpoint URL to paste into a PBX."""
    from .app import resolve_config
    from .server import default_journal_path, run_gunicorn
    from .zammad.config import ConfigError

    try:
        config = resolve_config(config_path, token)  # fail here, before any worker starts
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    journal = journal or str(default_journal_path())
    if journal == ":memory:" and workers > 1:
        raise click.UsageError("--journal :memory: keeps the caller log in one process: use --workers 1 or a file")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding {host}: anyone who can reach it and knows the token can push calls", err=True)
    shown_host = f"[{host}]" if ":" in host else host

    def announce(bound_port: int) -> None:
        base = f"http://{shown_host}:{bound_port}"
        click.echo(f"zammad-cti mock {__version__} listening on {base}")
        click.echo(f"  CTI endpoint (paste into your PBX): {base}/api/v1/cti/{config.token}")
        click.echo(f"  caller log:                         {base}/api/v1/cti/log")
        click.echo(f"  admin API:                          {base}/__admin/health")
        click.echo(f"  journal:                            {journal}")
        click.echo("Stop with Ctrl-C.")
        sys.stdout.flush()

    app_config = {"CTI_CONFIG": config, "JOURNAL": journal}
    run_gunicorn(app_config, host, port, workers=workers, threads=threads, on_ready=announce)
