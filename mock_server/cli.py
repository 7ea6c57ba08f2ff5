"""``zammad-cti``: serve the mock, check a target, report, simulate a PBX."""

from __future__ import annotations

import dataclasses
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
@click.option("--token", help="Override the configuration's token (a file without one needs it, else a random one is made).")
@click.option("--zammad", "zammad", metavar="VERSION", default=None,
              help="The Zammad version to answer as: current (6.x, 7.x; the default) or 2021 (5.x) "
                   "[default: the configuration's 'zammad', else current].")
@click.option("--open-caller-log", is_flag=True,
              help="Answer GET /api/v1/cti/log without credentials, as the first configured agent "
                   "(Zammad answers 403: use only for a local stand-in).")
@click.option("--journal", default=None, metavar="PATH",
              help="Keep the caller log and the journal in this SQLite file across restarts (written behind in "
                   "batches; 'zammad-cti report' reads it). [default: keep nothing, start empty]")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 512),
              help="Threads answering the admin API, the inspector and the caller log (pushes are answered on "
                   "the event loop: a latency or hang fault holds no thread).")
@click.option("--fault", "faults", multiple=True, metavar="SPEC",
              help="Inject a fault from the start (repeatable): latency:5000, latency:100-500,probability=0.5, "
                   "status:503,times=3, drop,event=hangup, hang:30. See /__admin/faults.")
def serve(host: str, port: int, config_path: str | None, token: str | None, zammad: str | None,
          open_caller_log: bool, journal: str | None, threads: int, faults: tuple[str, ...]) -> None:
    """Run the mock (one process, granian) and print the endpoint URL to paste into a PBX."""
    from .admin.faults import FaultError, parse_fault_option
    from .app import resolve_config
    from .db import JournalFile, JournalFileError
    from .server import PortInUse, run_granian
    from .zammad.config import ConfigError
    from .zammad.profiles import UnknownProfile, load_profile

    try:
        config = resolve_config(config_path, token)  # fail here, before the worker starts
        if zammad:
            config = dataclasses.replace(config, zammad=load_profile(zammad).name)
        fault_list = [parse_fault_option(spec) for spec in faults]
    except (ConfigError, FaultError, UnknownProfile) as exc:
        raise click.ClickException(str(exc)) from exc
    for note in config.notes:
        click.echo(f"note: {note}", err=True)
    if journal == ":memory:":
        journal = None
    resumed = None
    if journal:
        try:  # a file that is no journal is refused here, in one line; the worker loads it again
            file = JournalFile(journal)
            resumed = file.counts()
            file.close()
        except JournalFileError as exc:
            raise click.ClickException(str(exc)) from exc
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding {host}: anyone who can reach it and knows the token can push calls", err=True)
    shown_host = f"[{host}]" if ":" in host else host

    def announce(bound_port: int) -> None:
        base = f"http://{shown_host}:{bound_port}"
        click.echo(f"zammad-cti mock {__version__} listening on {base}")
        click.echo(f"  CTI endpoint (paste into your PBX): {base}/api/v1/cti/{config.token}")
        click.echo(f"  answers as:                         Zammad {config.profile.name} ({config.profile.releases})")
        click.echo(f"  caller log:                         {base}/api/v1/cti/log"
                   + (" (open: no credentials needed)" if open_caller_log else
                      " (Authorization: Token token=<an agent's token of the configuration>)" if config.agents else
                      " (the configuration lists no agents: 403 for every reader; see --open-caller-log)"))
        click.echo(f"  admin API:                          {base}/__admin/health")
        if journal is None:
            click.echo("  journal:                            in memory only, starts empty (--journal PATH keeps it)")
        elif resumed and any(resumed):
            click.echo(f"  journal:                            {journal}: {resumed[0]:,} calls, "
                       f"{resumed[1]:,} requests from earlier runs")
        else:
            click.echo(f"  journal:                            {journal} (new, empty)")
        for fault in fault_list:
            click.echo(f"  fault injected:                     {fault}")
        click.echo("Stop with Ctrl-C.")
        sys.stdout.flush()

    def farewell(kept: tuple[int, int] | None) -> None:
        if kept is None:
            click.echo("zammad-cti mock stopped; nothing kept (no --journal)")
        else:
            click.echo(f"zammad-cti mock stopped; {journal} holds {kept[0]:,} calls, {kept[1]:,} requests")
        sys.stdout.flush()

    app_config = {"CTI_CONFIG": config, "JOURNAL": journal, "FAULTS": fault_list, "OPEN_CALLER_LOG": open_caller_log}
    try:
        run_granian(app_config, host, port, threads=threads, on_ready=announce, on_stop=farewell)
    except PortInUse as exc:
        raise click.ClickException(f"{exc}; is another mock running there? Stop it or choose --port") from exc


@main.command(epilog="""\b
Exit codes: 0 every selected test passed; 1 the target failed the contract;
2 usage error; 3 nothing was tested; 4 the run itself broke; 130 interrupted.

\b
Examples:
  zammad-cti check                                   # the built-in mock
  zammad-cti check --suite fixtures,examples
  CTI_TARGET=https://zammad-staging.example.com/api/v1/cti/TOKEN zammad-cti check --junit check.xml
""")
@click.option("--target", envvar="CTI_TARGET", metavar="URL",
              help="CTI endpoint URL of the target, token included, as Zammad's admin page shows it "
                   "[env CTI_TARGET; default: start the built-in mock].")
@click.option("--target-config", envvar="CTI_TARGET_CONFIG", type=click.Path(exists=True, dir_okay=False),
              help="Configuration the target runs (JSON/YAML) [env CTI_TARGET_CONFIG; default: the documented one].")
@click.option("--suite", "suites", multiple=True, metavar="NAMES",
              help="Comma-separated suites to run: fixtures, examples, fuzz, stateful [default: all].")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True),
              help="Write a JUnit XML report (token masked) to this file.")
@click.option("--zammad-api-token", envvar="ZAMMAD_API_TOKEN", metavar="TOKEN",
              help="API token of a Zammad agent, to read a real Zammad's caller log [env ZAMMAD_API_TOKEN].")
@click.option("--zammad", "zammad", envvar="CTI_ZAMMAD", metavar="VERSION",
              help="The Zammad version the target is: current or 2021 [env CTI_ZAMMAD; default: the "
                   "configuration's 'zammad', else one probe of the target tells].")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Requests at the target at once, at most: fixture scenarios, schemathesis cases and "
                   "state machines run side by side (1: one request after the other).")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Per-request limit. A PBX waits only about 3 s for a newCall answer: "
                                      "slower newCall answers are reported as a finding.")
@click.option("--created-calls", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the call IDs of the newCalls the target accepted (2xx) to FILE (default: list "
                   "them at the end); refused ones created nothing.")
@click.option("-v", "--verbose", count=True, help="Show pytest's own output (-vv: one line per test).")
def check(target: str | None, target_config: str | None, suites: tuple[str, ...], junit: str | None,
          zammad_api_token: str | None, zammad: str | None, concurrency: int, timeout: float,
          created_calls: str | None, verbose: int) -> None:
    """Check a CTI endpoint against the contract: run the contract suites, print a summary.

    Without --target the built-in mock is checked. Failures name the scenario
    and show the request, a curl command, what Zammad answers and what the
    target answered; the token is masked everywhere.

    Warning: a run against a staging Zammad sends real call events to it and
    adds caller-log entries there (every callId starts with zcti-check-).
    Never point it at production.
    """
    from contract_tests.runner import (
        CheckOptions,
        CheckUsageError,
        parse_suites,
        run_check,
    )

    try:
        chosen = parse_suites(suites)
    except CheckUsageError as exc:
        raise click.BadParameter(str(exc), param_hint="'--suite'") from exc
    options = CheckOptions(target=target, target_config=target_config, suites=chosen,
                           junit=junit, api_token=zammad_api_token, verbosity=verbose,
                           concurrency=concurrency, timeout=timeout, created_calls=created_calls, zammad=zammad)
    try:
        code = run_check(options)
    except CheckUsageError as exc:
        raise click.UsageError(str(exc)) from exc
    sys.exit(code)


@main.command(epilog="""\b
Exit codes: 0 no error-level finding in the selection; 1 at least one;
2 usage error (no journal at PATH, an unreadable --since...).

\b
Examples:
  zammad-cti report --journal ci.sqlite3             # the file 'serve --journal ci.sqlite3' wrote
  zammad-cti report --journal ci.sqlite3 --format junit --output cti-report.xml
  zammad-cti report --since 15m --stale-after 0      # the last quarter hour; every open call counts
""")
@click.option("--journal", required=True, metavar="PATH", help="The SQLite file 'serve --journal PATH' wrote.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--since", metavar="TIME",
              help="Only requests at or after TIME: ISO 8601 (2026-11-25T10:00:00Z) or 15m, 2h, 1d ago.")
@click.option("--stale-after", default=600.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="A call with no hangup this long after its newCall is reported (call-not-ended).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the report to FILE; the verdict goes to stderr.")
def report(journal: str, fmt: str, since: str | None, stale_after: float, output: str | None) -> None:
    """Report what the PBX sent the mock, call by call, with every finding and a verdict."""
    from .admin.report import ReportError, build_report, parse_since, render

    try:
        since_time = parse_since(since) if since else None
    except ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from exc
    try:
        result = build_report(journal, since=since_time, stale_after=stale_after)
    except ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="'--journal'") from exc
    text = render(result, fmt)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise click.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="'--output'") from exc
        click.echo(result["summary"]["verdict"], err=True)
    else:
        click.echo(text, nl=False)
    sys.exit(0 if result["summary"]["passed"] else 1)


class _SimulationProgress:
    """Progress on stderr: one updating line on a terminal, a plain line every tenth of the run otherwise."""

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self.calls: int | None = None  # None: bounded by --duration only
        self.tty = sys.stderr.isatty()
        self.started = self._clock()
        self._last_shown = self.started
        self._next_due = 0

    def __call__(self, report) -> None:  # after every finished call, one thread at a time
        now = self._clock()
        done = report.calls_done
        text = (f"simulating: {done}{f'/{self.calls}' if self.calls else ''} calls done, "
                f"{report.calls_started - done} in flight, {report.mismatched_calls} mismatched, "
                f"{sum(report.errors.values())} errors, {now - self.started:.1f} s")
        if self.tty:
            if now - self._last_shown >= 0.1 or done == self.calls:
                self._last_shown = now
                click.echo("\r\x1b[K" + text, nl=False, err=True)
        elif self.calls:
            if done >= self._next_due or done == self.calls:
                self._next_due = done + max(1, self.calls // 10)
                click.echo(text, err=True)
        elif now - self._last_shown >= 5:
            self._last_shown = now
            click.echo(text, err=True)

    def finish(self) -> None:
        if self.tty:
            click.echo("\r\x1b[K", nl=False, err=True)


@main.command(epilog="""\b
Exit codes: 0 every call got the answers Zammad gives; 1 a call did not, or a
request failed (the mismatches are listed); 2 usage error; 130 interrupted.

\b
Examples:
  zammad-cti simulate --target http://127.0.0.1:3000/api/v1/cti/TOKEN --speed 100
  zammad-cti simulate --calls 500 --concurrency 20 --speed 50 --seed 7 --json   # CTI_TARGET set
  zammad-cti simulate --duration 60 --scenario my-office.json
""")
@click.option("--target", envvar="CTI_TARGET", required=True, metavar="URL",
              help="CTI endpoint URL of the target, token included, as Zammad's admin page shows it [env CTI_TARGET].")
@click.option("--calls", type=click.IntRange(min=1), default=None,
              help="Calls to place [default: 50; with --duration: as many as fit].")
@click.option("--concurrency", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Calls in flight at once (one thread and HTTP session each).")
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
              help="Call mix (JSON, see fixtures/simulator/scenario.schema.json) "
                   "[default: fixtures/simulator/default-mix.json].")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Divides the scenario's ring and talk times: 100 plays a 3-minute call in 1.8 s.")
@click.option("--seed", type=int, help="Draw the same calls again (call IDs stay new) [default: random, printed].")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop starting calls after this long; calls in flight hang up at once.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds to wait for each answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def simulate(target: str, calls: int | None, concurrency: int, scenario_path: str | None, speed: float,
             seed: int | None, duration: float | None, timeout: float, as_json: bool) -> None:
    """Play a PBX: place realistic calls against a CTI endpoint and check every answer.

    Each call is drawn from the scenario: answered, missed, busy, forwarded,
    voicemail, a blocked caller, or an agent's outbound call to Munich, Berlin
    or elsewhere, in any of the four encodings, with its ring and talk time.
    Zammad's answers are honoured as a PBX would (a reject hangs up at once)
    and compared with the ones a real Zammad gives.

    Warning: every call adds a caller-log entry to the target (call IDs start
    with zcti-sim-). Never point it at production.
    """
    import json

    from contract_tests.target import Target, TargetError
    from pbx_simulator.simulation import (
        ScenarioFileError,
        Simulation,
        format_report,
        load_scenario,
    )

    try:
        resolved = Target.from_url(target)
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="'--target'") from exc
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioFileError as exc:
        raise click.BadParameter(str(exc), param_hint="'--scenario'") from exc

    progress = _SimulationProgress()
    simulation = Simulation(resolved, scenario, calls=calls, concurrency=concurrency, speed=speed, seed=seed,
                            duration=duration, timeout=timeout, progress=progress)
    progress.calls = simulation.calls
    report = simulation.report
    click.echo(f"zammad-cti simulate: scenario {scenario.name}, "
               f"{f'{simulation.calls} calls' if simulation.calls else 'calls'}"
               f"{f' for up to {duration:g} s' if duration else ''}, concurrency {simulation.concurrency}, "
               f"speed {speed:g}, seed {report.seed}", err=as_json)
    click.echo(f"  target: {resolved.masked_url}", err=as_json)
    report = simulation.run()
    progress.finish()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_report(report))
    if report.stopped_early == "interrupted":
        sys.exit(130)
    sys.exit(0 if report.ok else 1)
