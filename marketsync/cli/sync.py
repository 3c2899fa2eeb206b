"""``marketsync sync``: what cron runs."""

from __future__ import annotations

import sys

import click

from marketsync.app.context import Workspace
from marketsync.cli.common import (
    restock_options,
    PROVIDER,
    chatty,
    chosen_providers,
    db_options,
    http_options,
    logging_options,
    problem,
    progress,
    report_push,
    report_sync,
    wait_option_of,
)
from marketsync.errors import EXIT_FAILED


@click.command()
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER,
              help="Sync only this marketplace (repeatable). Default: every one with credentials.")
@click.option("--full", is_flag=True, help="Re-list everything (BrickLink filed orders, BrickOwl's whole history).")
@click.option("--push/--no-push", envvar="MARKETSYNC_PUSH", show_envvar=True, default=False,
              help="Then bring every listing on every marketplace to what is available (see 'marketsync stock').")
@click.option("--mirror/--no-mirror", envvar="MARKETSYNC_MIRROR", show_envvar=True, default=False,
              help="After the push, create each lot listed on one marketplace only on the others "
                   "(see 'marketsync stock mirror').")
@click.option("--relist/--no-relist", envvar="MARKETSYNC_RELIST", show_envvar=True, default=True,
              help="With the push: create again, exactly as it was, a BrickLink lot buyers sold out (BrickLink deletes "
                   "it) once its lot has pieces available; never one the seller deleted.")
@click.option("--dry-run", is_flag=True, help="With --push: show the listing changes; change no listing.")
@click.option("--new-account", is_flag=True,
              help="Start the account (--account) in a file that holds another account's business (refused "
                   "without it: a typo would book every order twice).")
@wait_option_of(120.0)  # long enough to wait out a listener's short sync ('marketsync listen')
@db_options
@restock_options
@http_options
def sync(providers: tuple[str, ...], full: bool, push: bool, mirror: bool, relist: bool, dry_run: bool,
         new_account: bool, wait: float, ws: Workspace) -> None:
    """Pull new and changed orders and reserve their stock.

    Credentials come from BRICKLINK_CONSUMER_KEY, BRICKLINK_CONSUMER_SECRET, BRICKLINK_TOKEN_VALUE,
    BRICKLINK_TOKEN_SECRET and BRICKOWL_API_KEY; BRICKLINK_API_URL and BRICKOWL_API_URL point
    the adapters elsewhere.

    Off a terminal a clean run prints nothing; each problem is one line on stderr.
    Exit codes: 0 ok, 1 a provider failed, 2 usage or configuration, 75 another sync is running.

    \b
    Examples:
        marketsync sync
        marketsync sync --provider bricklink
        marketsync sync --push
    """
    from marketsync.app import sync as use_case

    if dry_run and not push:
        raise click.UsageError("--dry-run goes with --push")
    if mirror and not push:
        raise click.UsageError("--mirror (MARKETSYNC_MIRROR) goes with --push (MARKETSYNC_PUSH): it mirrors the "
                               "listings the push links")
    chosen = chosen_providers(providers, ws)
    with progress() as shown:
        report = use_case.sync(ws, chosen, full=full, push=push, dry_run=dry_run, wait=wait,
                               check_credentials=not providers, progress=shown, mirror=mirror,
                               new_account=new_account, relist=relist)
    for line in ([report.backup_problem] if report.backup_problem else []) + report.silent:
        problem(line)
    for line in report.leftover:  # found by a run that ended (interrupted) before it could say so
        problem(f"{line} (found by an earlier run that was interrupted before its report)")
    report_sync(report.results + report.again, exit_on_failure=False)
    report_push(report.pushed, dry_run)
    if report.mirrored is not None:
        from marketsync.cli.stock import report_mirror

        report_mirror(report.mirrored)
    if chatty() and report.oversold:
        click.echo(f"{report.oversold} lot(s) oversold at the end of the run: see "
                   "'marketsync inventory list --oversold'", err=True)
    if not report.ok:
        sys.exit(EXIT_FAILED)
