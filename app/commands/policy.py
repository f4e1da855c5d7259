"""`oms-auth policy lint|test|diff|push|pull`: policy as code from a shell or CI.

Exit codes: lint 0 clean / 1 errors (or warnings with --strict); test 0 all passed / 1 any
failure; diff 0 / 2 with --fail-on-change when a decision flips / 1 when a policy cannot be
read; push/pull 0 / 1 when refused. Usage errors exit 2 (typer).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import orjson
import typer

from app.commands.common import LightGroup, cli_actor
from app.errors import AuthzError

if TYPE_CHECKING:  # the policy engine is imported by the commands that use it (fast --help)
    from app.policy.diff import PolicyDiff
    from app.policy.findings import LintReport
    from app.policy.snapshot import PolicySnapshot
    from app.policy.testing import RunResult

policy_cli = typer.Typer(
    name="policy",
    help="Lint, test, diff and sync policies (model.conf + *.csv).",
    no_args_is_help=True,
    cls=LightGroup,
    rich_markup_mode=None,  # plain help: rich's Markdown renderer costs ~0.35 s of start-up
)


class Format(StrEnum):
    text = "text"
    json = "json"


DirArg = Annotated[Path, typer.Argument(help="Policy folder (model.conf + *.csv)")]
FormatOpt = Annotated[Format, typer.Option("--format", help="text for people, json for tools")]


def _echo_json(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"oms-auth: {message}", err=True)
    raise typer.Exit(code)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- lint ---------------------------------------------------------------------------------
@policy_cli.command()
def lint(
    dirs: Annotated[list[Path] | None, typer.Argument(help="Policy folders")] = None,
    strict: Annotated[bool, typer.Option(help="Warnings fail too")] = False,
    fmt: FormatOpt = Format.text,
    codes: Annotated[bool, typer.Option("--codes", help="List every lint code")] = False,
) -> None:
    """Check model syntax, rule arity and values, roles, cycles, duplicates, dead rules."""
    from app.policy.findings import CODES
    from app.policy.workspace import read_policy_dir

    if codes:
        for code, (severity, meaning) in CODES.items():
            typer.echo(f"{code}  {severity:<7}  {meaning}")
        return
    reports = {
        d: read_policy_dir(d, prefix=f"{_display(d)}/").lint() for d in dirs or [Path("policies")]
    }
    failed = any(r.failed(strict=strict) for r in reports.values())
    if fmt is Format.json:
        _echo_json(
            {
                "ok": not failed,
                "policies": [
                    {"path": _display(d), **r.as_dict(strict=strict)} for d, r in reports.items()
                ],
            }
        )
    else:
        for d, report in reports.items():
            _print_report(_display(d), report)
    raise typer.Exit(1 if failed else 0)


def _print_report(name: str, report: LintReport) -> None:
    for f in report.sorted():
        typer.echo(f.text())
    typer.echo(f"{name}: {report.summary()}")


# -- test ---------------------------------------------------------------------------------
@policy_cli.command("test")
def run_tests(
    policy_dir: DirArg = Path("policies"),
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Write a JUnit XML report here")
    ] = None,
    name_filter: Annotated[
        str | None, typer.Option("--filter", help="Regex on 'suite/case' names")
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Print passes too")] = False,
    coverage: Annotated[bool, typer.Option(help="List rules no case exercised")] = False,
) -> None:
    """Run the YAML suites in DIR/tests/*_test.yaml against the policies they name."""
    from app.policy.junit import write_junit
    from app.policy.suites import find_suites
    from app.policy.testing import run_suites

    try:
        pattern = re.compile(name_filter) if name_filter else None
    except re.error as exc:
        _fail(f"--filter is not a valid regular expression: {exc}", 2)
    suites = find_suites(policy_dir)
    if not suites:
        _fail(f"no test suites in {_display(policy_dir / 'tests')} (files named *_test.yaml)")
    run = run_suites(
        suites, default_policy=policy_dir.resolve(), name_filter=pattern, display=_display
    )
    _print_run(run, verbose=verbose, coverage=coverage)
    if junit_xml is not None:
        write_junit(run, junit_xml)
    if run.passed + run.failed == 0 and not run.errors:
        _fail("no test case matched" + (f" --filter {name_filter!r}" if name_filter else ""))
    raise typer.Exit(0 if run.ok else 1)


def _print_run(run: RunResult, *, verbose: bool, coverage: bool) -> None:
    for suite in run.suites:
        if suite.error:
            typer.echo(f"{suite.file}:{suite.error_line}: ERROR {suite.name}: {suite.error}")
        for r in suite.results:
            where = f"{suite.file}:{r.check.line}"
            if not r.passed:
                typer.echo(f"{where}: FAIL {suite.name} / {r.name}: {r.failure}; {r.trace}")
            elif verbose:
                typer.echo(f"{where}: PASS {suite.name} / {r.name}: {r.actual}; {r.trace}")
    if coverage:
        for policy_dir, cov in run.coverage.items():
            name = _display(policy_dir)
            rules = [r for r in cov.rules if r.ptype.startswith("p")]
            unmatched = cov.unmatched()
            typer.echo(
                f"coverage {name}: {len(cov.decided)} of {len(rules)} rules decided a case, "
                f"{len(rules) - len(unmatched)} matched one"
            )
            for rule in cov.undecided():
                state = "not exercised" if rule in unmatched else "matched, never decisive"
                typer.echo(f"  {state}: {rule.text()} ({rule.source})")
            for role in sorted(cov.roles() - cov.roles_used):
                typer.echo(f"  role never used: {role}")
    typer.echo(run.summary())


# -- diff ---------------------------------------------------------------------------------
def _snapshot(path: Path, label: str, *, shown_as: str | None = None) -> PolicySnapshot:
    from app.policy.snapshot import PolicySnapshot
    from app.policy.workspace import read_policy_dir

    policy = read_policy_dir(path, prefix=f"{shown_as or _display(path)}/")
    errors = policy.lint().errors
    if policy.model is None or errors:
        first = errors[0].text() if errors else "no model"
        _fail(f"{label} policy {_display(path)} fails lint: {first}")
    return PolicySnapshot.build(policy.model, policy.rules, revision=0)


@policy_cli.command()
def diff(
    old: Annotated[
        Path | None, typer.Argument(help="Old policy folder (or DIR with --git)")
    ] = None,
    new: Annotated[Path | None, typer.Argument(help="New policy folder")] = None,
    git: Annotated[
        str | None, typer.Option("--git", help="Compare DIR at this git revision with DIR now")
    ] = None,
    fmt: FormatOpt = Format.text,
    fail_on_change: Annotated[
        bool, typer.Option("--fail-on-change", help="Exit 2 when any decision flips")
    ] = False,
) -> None:
    """Which decisions flip between two policies (impact analysis for a review)."""
    import tempfile

    from app.commands.gitrev import GitError, export_policy_dir
    from app.policy.diff import diff_policies

    with tempfile.TemporaryDirectory(prefix="oms-auth-diff-") as tmp:
        if git is not None:
            if new is not None:
                _fail("with --git give one folder: the policy as it is now", 2)
            current = old or Path("policies")
            try:
                before = export_policy_dir(current, git, Path(tmp))
            except GitError as exc:
                _fail(str(exc))
            shown = f"{git}:{_display(current)}"
            old_snap = _snapshot(before, git, shown_as=shown)
            new_snap = _snapshot(current, "current")
        else:
            if old is None or new is None:
                _fail("give OLD and NEW folders, or --git REV [DIR]", 2)
            old_snap, new_snap = _snapshot(old, "OLD"), _snapshot(new, "NEW")
        try:
            result = diff_policies(old_snap, new_snap)
        except AuthzError as exc:
            _fail(exc.message)
    _print_diff(result, fmt)
    raise typer.Exit(2 if fail_on_change and result.flips else 0)


def _print_diff(result: PolicyDiff, fmt: Format) -> None:
    if fmt is Format.json:
        _echo_json(result.as_dict())
        return
    for rule in result.removed:
        typer.echo(f"- {rule.text()}  ({rule.source})")
    for rule in result.added:
        typer.echo(f"+ {rule.text()}  ({rule.source})")
    for flip in result.flips:
        typer.echo(flip.text())
    n = len(result.flips)
    typer.echo(f"{n} decision{'s' if n != 1 else ''} changed ({result.evaluated} compared)")


# -- push / pull ----------------------------------------------------------------------------


@policy_cli.command()
def push(
    policy_dir: DirArg = Path("policies"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the difference")] = False,
) -> None:
    """Make the database rules (casbin_rule) exactly the rules of the policy files.

    For OMS_AUTH_POLICY_SOURCE=db (the table is then the whole policy). Under files+db the
    files are served already, so push refuses: a copy in the table would outlive its line.
    """
    import asyncio

    from app.commands.sync import push_command

    asyncio.run(push_command(policy_dir, dry_run=dry_run, actor=cli_actor(), display=_display))


@policy_cli.command()
def pull(
    policy_dir: DirArg = Path("policies"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="CSV file to write, outside the policy folder (required)"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the difference")] = False,
) -> None:
    """Make one file outside the policy folder hold exactly the database rules (comments are
    kept): to review runtime changes before moving them into the policy files."""
    import asyncio

    from app.commands.sync import pull_command

    if output is None:
        _fail(
            "give the file to write with -o FILE, outside the policy folder "
            f"(a *.csv in {_display(policy_dir)}/ is loaded as policy too)",
            2,
        )
    asyncio.run(pull_command(policy_dir, output, dry_run=dry_run, display=_display))
