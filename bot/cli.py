"""The `paved` command: parse the arguments, build what the service would build, call the core, exit.

Exit codes: 0 when nothing stands in the way, 1 when a finding of severity error was found, 2 when the
command could not judge at all (bad usage, a broken rule file, an unknown revision). Each command
imports only what it uses, inside itself, so `paved validate` starts fast; that is the only reason for
an import inside a function here (Paved's modules import one another without cycles, as
tests/test_architecture.py checks). For the same reason the commands defined elsewhere (the service's,
`ci` and `sandbox`) are added to the parser only when one of them is asked for, or all commands listed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.errors import PavedError, UsageError

if TYPE_CHECKING:
    from bot.adapters.catalogue_index import SQLiteCatalogueIndex
    from bot.adapters.repo import FolderTree, GitTree
    from bot.audit import PendingCommit
    from bot.model import Finding, Tree
    from bot.settings import Settings

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class _Context:
    """What every command needs: settings, the repo root and the catalogue index."""

    def __init__(self, args: argparse.Namespace) -> None:
        from bot.adapters.catalogue_index import SQLiteCatalogueIndex
        from bot.adapters.repo import find_root
        from bot.settings import Settings

        self.settings: Settings = Settings.from_env()
        self.root: Path = Path(args.repo).resolve() if getattr(args, "repo", None) else find_root(Path.cwd())
        in_data_folder = not getattr(args, "no_cache", False)
        # `--no-cache` keeps the index in a private temporary file: nothing judged in this run outlives it.
        self.store: SQLiteCatalogueIndex = SQLiteCatalogueIndex(
            self.settings.catalogue_index if in_data_folder else None)

    def color(self, stream: TextIO) -> bool:
        return self.settings.color and stream.isatty()


def _print_findings(findings: list[Finding], fmt: str, files_checked: int, ctx: _Context) -> None:
    if fmt == "json":
        from bot.render import json as render_json

        sys.stdout.write(render_json.render_findings(findings, files_checked=files_checked))
    elif fmt == "github":
        from bot.render import actions

        sys.stdout.write(actions.render(findings))
    else:
        from bot.render import text

        sys.stdout.write(text.render_findings(findings, color=ctx.color(sys.stdout), files_checked=files_checked))


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every request under catalog/ as it is on disk, by the rules in the same folder."""
    from bot.adapters.judging import ProcessJudging, paused_collector
    from bot.adapters.repo import FolderTree
    from bot.plan import validate_tree
    from bot.validate import is_request_file

    ctx = _Context(args)
    tree = FolderTree(ctx.root)
    # A large catalogue is judged on every core the process may use (small ones here: see judging.py).
    with ProcessJudging() as judging, paused_collector():
        result = validate_tree(tree, store=ctx.store, judging=judging)
    findings = result.findings
    prefix = _validated_path(args.path, ctx.root) if args.path else ""
    if not prefix:
        _print_findings(findings, args.format, result.files_checked, ctx)
        return EXIT_FINDINGS if any(f.severity == "error" for f in findings) else EXIT_OK
    # The whole repo was judged (references and budgets cross files); only PATH's findings are shown, and
    # decide the exit code, so the summary says what was found elsewhere: a clean PATH is not a clean repo.
    shown = [f for f in findings if f.path == prefix or f.path.startswith(prefix + "/")]
    elsewhere = [f for f in findings if f not in shown]
    listed = tree.files(prefix + "/") if (ctx.root / prefix).is_dir() else {prefix: ""}
    counted = sum(1 for path in listed if is_request_file(path)) if prefix.startswith("catalog") else len(listed)
    _print_findings(shown, args.format, counted, ctx)
    from bot.render.wording import finding_tally, plural

    there = (f"{finding_tally(elsewhere)} elsewhere in the repo: run `paved validate`" if elsewhere
             else "no findings elsewhere in the repo either")
    print(f"only {prefix} is reported ({plural(counted, 'file')} of {result.files_checked} judged); {there}",
          file=sys.stdout if args.format == "text" else sys.stderr)
    return EXIT_FINDINGS if any(f.severity == "error" for f in shown) else EXIT_OK


def _validated_path(given: str, root: Path) -> str:
    """PATH as a path inside the platform repo ("" for the repo itself); UsageError when it is not one."""
    wanted = Path(given).resolve()
    try:
        prefix = wanted.relative_to(root).as_posix()
    except ValueError as exc:
        raise UsageError(f"{given} is not inside the platform repo {root}") from exc
    if not wanted.exists():
        raise UsageError(f"{given} does not exist")
    return "" if prefix == "." else prefix.rstrip("/")


def _tree(root: Path, revision: str | None) -> FolderTree | GitTree:
    from bot.adapters.repo import FolderTree, GitTree

    return FolderTree(root) if revision is None else GitTree(root, revision)


def cmd_plan(args: argparse.Namespace) -> int:
    """Show what merging HEAD into BASE would create, change and delete, and what is wrong with it."""
    from bot.adapters.judging import ProcessJudging, paused_collector
    from bot.plan import make_plan

    ctx = _Context(args)
    # Each git tree keeps a `git cat-file` process: closed here, not left to the garbage collector.
    with closing(_tree(ctx.root, args.base)) as base, closing(_tree(ctx.root, args.head)) as head, \
            ProcessJudging() as judging, paused_collector():
        plan = make_plan(base, head, store=ctx.store, judging=judging)
    if args.format == "markdown":
        from bot.render import markdown

        sys.stdout.write(markdown.render(plan, repo_url=args.repo_url))
    elif args.format == "json":
        from bot.render import json as render_json

        sys.stdout.write(render_json.render(plan))
    elif args.format == "github":
        from bot.render import actions

        sys.stdout.write(actions.render_plan(plan))
    else:
        from bot.render import text

        sys.stdout.write(text.render(plan, color=ctx.color(sys.stdout)))
    return EXIT_OK if plan.ok else EXIT_FINDINGS


def cmd_test(args: argparse.Namespace) -> int:
    """Run every policy's pass/fail cases under schemas/policies/tests/ (--verbose lists the passing ones too)."""
    from bot.adapters.catalogue_index import SQLiteCatalogueIndex
    from bot.adapters.repo import FolderTree
    from bot.policy_tests import run_policy_tests
    from bot.rules import load_rules

    ctx = _Context(args)
    tree = FolderTree(ctx.root)
    report = run_policy_tests(tree, load_rules(tree), SQLiteCatalogueIndex())
    by_policy: dict[str, list[Any]] = {}
    for case in report.cases:
        by_policy.setdefault(case.policy, []).append(case)
    for policy, cases in sorted(by_policy.items()):
        passed = sum(1 for c in cases if c.ok)
        mark = "✓" if passed == len(cases) else "✗"
        print(f"{mark} {policy}: {passed}/{len(cases)} cases")
        for case in cases:
            if not case.ok:
                print(f"    ✗ {case.expectation}: {case.path}: {case.explanation}")
            elif args.verbose:
                print(f"    ✓ {case.expectation}: {case.path}")
    for policy in report.untested:
        print(f"✗ {policy}: no test cases (add schemas/policies/tests/{policy}/pass/ and fail/)")
    for policy in report.unknown:
        print(f"✗ schemas/policies/tests/{policy}/: no policy with this id")
    total = len(report.cases)
    failed = sum(1 for c in report.cases if not c.ok)
    print(f"{total - failed} passed, {failed} failed")
    return EXIT_OK if report.ok else EXIT_FINDINGS


def cmd_explain(args: argparse.Namespace) -> int:
    """Describe the fields of a kind: types, allowed values, defaults, from its schema."""
    from bot.adapters.repo import FolderTree
    from bot.explain import as_markdown, as_text, kind_schema
    from bot.rules import load_rules

    rules = load_rules(FolderTree(_repo_or_starter(args)))
    schema = kind_schema(rules, args.kind)
    print(as_markdown(schema) if args.format == "markdown" else as_text(schema), end="")
    return EXIT_OK


def _repo_or_starter(args: argparse.Namespace) -> Path:
    """The platform repo the command is run in; outside any, the starter Paved ships (saying so), so that
    someone who has only installed Paved can read what its kinds are."""
    from bot.adapters.repo import find_root
    from bot.errors import RevisionError

    if args.repo:
        return Path(args.repo).resolve()
    try:
        return find_root(Path.cwd())
    except RevisionError:
        from bot import starter

        print("paved: not in a platform repo, so these are Paved's starter schemas (`paved init` makes a repo "
              "with them)", file=sys.stderr)
        return starter.root()


def cmd_new(args: argparse.Namespace) -> int:
    """Write a new request file for KIND NAME, with the editor schema line, and show what is left to fill in.

    The request is judged with the rest of the catalogue before it is written. When its name is not one
    Paved takes, or names a resource that exists already, or its owner is no team of the catalogue, nothing
    is written and the command exits 1 with the finding: those are what was asked for, not blanks to fill.
    Anything else the new file lacks (a description, a reference to fill in) is listed, and it exits 0.
    """
    from bot.adapters.repo import FolderTree
    from bot.explain import kind_schema, skeleton
    from bot.model import WithFile
    from bot.plan import validate_tree
    from bot.render import text as render_text
    from bot.rules import load_rules
    from bot.yamlio import dump_request

    if not args.name or args.name in (".", "..") or any(c in args.name for c in "/\\\0"):
        raise UsageError(f"{args.name!r} is not a name Paved takes: it would not be a file of its own",
                         hint="A name is 1 to 63 lowercase letters, digits and '-', starting with a letter.")
    ctx = _Context(args)
    tree = FolderTree(ctx.root)
    rules = load_rules(tree)
    schema = kind_schema(rules, args.kind)
    kind = schema["properties"]["kind"]["const"]
    # Requests go to a folder per kind, named by the kind's plural (`x-paved.plural` in its schema).
    target = ctx.root / "catalog" / rules.describe(kind).plural / f"{args.name}.yaml"
    if target.exists():
        raise UsageError(f"{target.relative_to(ctx.root)} already exists",
                         hint="Edit it, or choose another name.")
    schema_path = Path("../" * (len(target.relative_to(ctx.root).parts) - 1)) / rules.kind_paths[kind]
    # A team belongs to itself unless it is part of another; anything else to the platform team unless told.
    owner = args.owner or (args.name if rules.describe(kind).is_team else "platform")
    text = dump_request(skeleton(schema, args.name, owner), schema_comment=schema_path.as_posix())
    relative = target.relative_to(ctx.root).as_posix()
    findings = validate_tree(WithFile(tree, relative, text.encode()), store=ctx.store, rules=rules).findings
    asked = [f for f in findings if f.severity == "error" and _names_what_was_asked(f, relative, f"{kind}/{args.name}")]
    if asked:
        print(f"paved: {relative} was not written:", file=sys.stderr)
        print(render_text.render_findings(asked, color=ctx.color(sys.stderr)), end="", file=sys.stderr)
        return EXIT_FINDINGS
    if args.stdout:
        print(text, end="")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {relative}")
    blanks = [f for f in findings if f.path == relative]
    if blanks:
        print("still to fill in:", file=sys.stderr)
        print(render_text.render_findings(blanks, color=ctx.color(sys.stderr)), end="", file=sys.stderr)
    return EXIT_OK


def _names_what_was_asked(finding: Finding, path: str, identity: str) -> bool:
    """Whether a finding is about the name or owner given to `paved new`, rather than a blank to fill in."""
    if finding.rule == "catalog.unique-identity":
        return finding.message.startswith(f"{identity} is already defined")
    return finding.path == path and (finding.pointer in ("/metadata/name", "/metadata/owner")
                                     or finding.rule == "catalog.owner")


def cmd_init(args: argparse.Namespace) -> int:
    """Create a platform repo in DIR (the current folder by default) from Paved's starter: schemas, policies,
    prices, templates, a commented paved.yaml, a first team for the platform team, the GitHub Actions
    workflows, CODEOWNERS for the rule folders and a README for the repo's users. Nothing is overwritten:
    when any of those files exists, nothing is written. With --upgrade, show instead what this Paved's
    starter rules would change in the platform repo at DIR, as a patch (`paved init --upgrade | git apply`
    takes it); nothing is written.
    """
    from bot.starter import new_repo

    folder = Path(args.dir).resolve()
    if args.upgrade:
        return _show_upgrade(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{args.dir} is a file, not a folder: nothing was written")
    repo = new_repo.NewRepo(args.org, args.team, tuple(args.maintainer or _your_login()))
    found = new_repo.files(repo)
    taken = new_repo.existing(folder, found)
    if taken:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise UsageError(f"{folder} already has {shown}: nothing was written",
                         hint="Choose an empty or new folder; in an existing platform repo, `paved init --upgrade` "
                              "shows what this Paved's starter would change.")
    findings = _judge_new_repo(found)
    if any(f.severity == "error" for f in findings):
        from bot.render import text

        print(f"paved: the new platform repo would not pass `paved validate`, so nothing was written in {folder}:",
              file=sys.stderr)
        sys.stderr.write(text.render_findings(findings, color=False))
        return EXIT_FINDINGS
    new_repo.write(folder, found)
    _print_new_repo(folder, repo, found, _git_init(folder))
    return EXIT_OK


def _your_login() -> tuple[str, ...]:
    """The platform team's first maintainer when none is named: `git config github.user`, else the login name
    on this machine, said as such (it is only a guess at a GitHub login)."""
    import getpass

    from bot.adapters.repo import git_output
    from bot.errors import RevisionError

    try:
        login = git_output(Path.cwd(), "config", "--get", "github.user").decode().strip()
    except RevisionError:
        login = ""
    if not login:
        login = getpass.getuser()
        print(f"paved: no --maintainer given: the platform team is {login!r} alone (your login name here); "
              "make it your GitHub login", file=sys.stderr)
    return (login,)


def _judge_new_repo(found: dict[str, bytes]) -> list[Finding]:
    """What `paved validate` (and the settings' own check) would say about the new repo, judged in memory."""
    from bot.adapters.catalogue_index import SQLiteCatalogueIndex
    from bot.config import load_config
    from bot.model import MemoryTree
    from bot.plan import validate_tree
    from bot.providers import installed, settings_schemas

    tree = MemoryTree(dict(found), label="the new platform repo")
    load_config(tree, settings_schemas(installed()))
    with closing(SQLiteCatalogueIndex()) as index:
        return validate_tree(tree, store=index).findings


def _git_init(folder: Path) -> str:
    """Make `folder` a git repository on branch main, unless it is inside one already; says what it did."""
    from bot.adapters.repo import git_output
    from bot.errors import RevisionError

    try:
        inside = git_output(folder, "rev-parse", "--show-toplevel").decode().strip()
    except RevisionError:
        inside = ""
    if inside:
        return f"inside the git repository {inside}: nothing committed yet"
    try:
        git_output(folder, "init", "--quiet", "--initial-branch=main")
    except RevisionError as exc:
        return f"not a git repository: `git init` failed ({exc.message})"
    return "a new git repository, branch main: nothing committed yet"


def _print_new_repo(folder: Path, repo: Any, found: dict[str, bytes], git: str) -> None:
    from bot.starter import WORKFLOWS
    from bot.starter.new_repo import CODEOWNERS

    def count(prefix: str) -> int:
        return sum(1 for path in found if path.startswith(prefix))

    templates = sorted({path.split("/")[1] for path in found if path.startswith("templates/")})
    who = ", ".join(repo.maintainers)
    rows = [
        ("paved.yaml", "Paved's settings, each key with a comment"),
        (f"catalog/teams/{repo.team}.yaml", f"the platform team ({repo.team}), maintained by {who}"),
        ("schemas/", f"{count('schemas/')} files: the kinds, the guardrail policies with their cases, the "
                                   "standards, prices"),
        ("templates/", f"{count('templates/')} files: the golden paths {', '.join(templates)}"),
        (".github/workflows/", ", ".join(Path(w).name for w in WORKFLOWS) + ": Paved in GitHub Actions"),
        (CODEOWNERS, f"the {repo.team} team reviews rule changes" + (
            "" if repo.organization else " (name your organisation in it: ORG)")),
        ("README.md", "how to ask for things here, for the repo's users"),
    ]
    print(f"Created a platform repo in {folder} ({git}):")
    width = max(len(path) for path, _ in rows)
    for path, what in rows:
        print(f"  {path:<{width}}  {what}")
    print(f"Next: cd {folder} && paved validate, then commit, push and connect Paved (README.md, "
          "\"For the platform team\").")


def _show_upgrade(folder: Path) -> int:
    from bot.adapters.repo import find_root
    from bot.starter import new_repo

    root = find_root(folder)
    upgrade = new_repo.upgrade(root)
    sys.stdout.write(upgrade.patch)
    if upgrade.kept:
        shown = ", ".join(upgrade.kept[:5]) + (f" and {len(upgrade.kept) - 5} more" if len(upgrade.kept) > 5 else "")
        print(f"paved: left as they are, since Paved's starter has no such files: {shown}", file=sys.stderr)
    if upgrade.changed or upgrade.added:
        from bot.render.wording import plural

        print(f"paved: this Paved's starter would change {plural(len(upgrade.changed), 'file')} and add "
              f"{len(upgrade.added)} in {root} (nothing was written; `paved init --upgrade | git apply` applies it)",
              file=sys.stderr)
    else:
        print(f"paved: the starter rules in {root} are this Paved's: nothing to change", file=sys.stderr)
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """Show who asked for what, who approved it, and when it was applied, from git and Paved's notes."""
    from bot.adapters.repo import commit_dates, fetch_notes_from_origin, notes
    from bot.apply import NOTES_REF
    from bot.audit import as_csv, as_json, as_text, parse_resource, parse_since, trail
    from bot.stats import PLANS_REF, plan_records

    since = parse_since(args.since) if args.since else None
    ctx = _Context(args)
    resource = None
    if args.resource:
        from bot.adapters.repo import FolderTree
        from bot.rules import load_rules

        resource = parse_resource(args.resource, load_rules(FolderTree(ctx.root)).described)
    if not args.offline:
        fetch_notes_from_origin(ctx.root, NOTES_REF)
        fetch_notes_from_origin(ctx.root, PLANS_REF)
    recorded = notes(ctx.root, NOTES_REF)
    pending = _pending_commits(ctx, set(recorded))
    entries = trail(recorded, commit_dates(ctx.root, list(recorded)), resource, since=since, pending=pending,
                    plans=plan_records(notes(ctx.root, PLANS_REF)))
    render = {"json": as_json, "csv": as_csv}.get(args.format, as_text)
    sys.stdout.write(render(entries))
    return EXIT_OK


# Pending commits are planned one by one to say what each changes; past this many, the oldest are left
# out (and the command says so): a repo Paved has never applied would otherwise plan its whole history.
MAX_PENDING = 50


def _pending_commits(ctx: _Context, applied: set[str]) -> list[PendingCommit]:
    """The commits on HEAD's first-parent line newer than the newest applied one, with their changes."""
    from bot.adapters.repo import EMPTY_TREE, GitTree, commit_dates, git_output
    from bot.audit import PendingCommit
    from bot.errors import RevisionError
    from bot.model import MemoryTree
    from bot.plan import make_plan
    from bot.rules import load_rules

    try:
        listing = git_output(ctx.root, "rev-list", "--first-parent", "--parents", "HEAD").decode().splitlines()
    except RevisionError:
        return []  # no commits yet
    line: list[tuple[str, str | None]] = []
    for row in listing:
        sha, *parents = row.split()
        if sha in applied:
            break
        line.append((sha, parents[0] if parents else None))
    if len(line) > MAX_PENDING:
        print(f"paved: {len(line)} commits are not applied yet; the trail shows the newest {MAX_PENDING}",
              file=sys.stderr)
        line = line[:MAX_PENDING]
    described = commit_dates(ctx.root, [sha for sha, _ in line])
    found: list[PendingCommit] = []
    for sha, parent in line:
        head = GitTree(ctx.root, sha)
        base: Tree = GitTree(ctx.root, parent) if parent else MemoryTree({}, label=EMPTY_TREE[:12])
        try:
            plan = make_plan(base, head, store=ctx.store, rules=load_rules(head))
        except PavedError:
            continue  # not a platform repo at this commit (no rules yet): nothing Paved would apply
        finally:
            head.close()
            base.close()
        author, when, subject = described.get(sha, ("", "", ""))
        found.append(PendingCommit(sha, author, when, subject, {c.identity: c.action for c in plan.all_changes}))
    return found


def cmd_stats(args: argparse.Namespace) -> int:
    """Requests per week, lead times, first plans passed, frequent findings, failed applies, services on the
    latest golden path, and how satisfied developers are (by week, kind and golden path), from git."""
    from bot.adapters.repo import fetch_notes_from_origin, notes
    from bot.apply import NOTES_REF
    from bot.audit import parse_since
    from bot.satisfaction import FEEDBACK_REF, feedback_records
    from bot.standards import STANDARDS_REF, newest, on_latest
    from bot.stats import PLANS_REF, apply_records, as_csv, as_json, as_text, compute, plan_records

    since = parse_since(args.since) if args.since else None
    ctx = _Context(args)
    if not args.offline:
        fetch_notes_from_origin(ctx.root, NOTES_REF)
        fetch_notes_from_origin(ctx.root, PLANS_REF)
        fetch_notes_from_origin(ctx.root, STANDARDS_REF)
        fetch_notes_from_origin(ctx.root, FEEDBACK_REF)
    plans = plan_records(notes(ctx.root, PLANS_REF))
    applies = apply_records(notes(ctx.root, NOTES_REF))
    planned = {p.pull_request for p in plans}
    # Pull requests merged before plans were recorded are counted from their apply's actions, whose
    # owners only the catalogue knows: read it at HEAD, and only when such a pull request exists.
    unplanned = [a for a in applies if a.pull_request is not None and a.pull_request not in planned and a.previous]
    owners = _owners(ctx, {i for a in unplanned for i in a.actions}) if unplanned else {}
    card = newest(notes(ctx.root, STANDARDS_REF))
    stats = compute(plans, applies, since=since, owners=owners, golden_path=on_latest(card) if card else None,
                    feedback=feedback_records(notes(ctx.root, FEEDBACK_REF)))
    sys.stdout.write({"json": as_json, "csv": as_csv}.get(args.format, as_text)(stats))
    return EXIT_OK


def cmd_standards(args: argparse.Namespace) -> int:
    """Show the standards' scorecard: which resources meet the platform's standards as they exist, what each
    failing one should fix and how, and which standards fail most; from the notes reconcile records in git."""
    from bot.adapters.repo import fetch_notes_from_origin, notes
    from bot.render.standards import as_json, as_text
    from bot.standards import STANDARDS_REF, filtered, newest

    ctx = _Context(args)
    if not args.offline:
        fetch_notes_from_origin(ctx.root, STANDARDS_REF)
    card = newest(notes(ctx.root, STANDARDS_REF))
    title = "Standards"
    if card is not None and (args.resource or args.team or args.failing):
        identity = args.resource if args.resource is None or "/" in args.resource else next(
            (r.identity for r in card.resources if r.name == args.resource), f"?/{args.resource}")
        card = filtered(card, team=args.team, identity=identity, failing=args.failing)
        title = " ".join(x for x in ("Standards", f"of {identity}" if identity else "",
                                     f"of team {args.team}" if args.team else "",
                                     "(failing only)" if args.failing else "") if x)
    sys.stdout.write(as_json(card) if args.format == "json" else as_text(card, title=title))
    return EXIT_OK


def _owners(ctx: _Context, identities: set[str]) -> dict[str, str]:
    """The owning team of each of `identities` still in the catalogue at HEAD."""
    from bot.adapters.repo import GitTree
    from bot.catalogue import judge
    from bot.rules import load_rules

    try:
        with GitTree(ctx.root, "HEAD") as tree:
            catalogue = judge(tree, load_rules(tree), ctx.store)
            return {i: entries[0].owner for i, entries in catalogue.definitions(identities).items() if entries}
    except PavedError:
        return {}


def cmd_export(args: argparse.Namespace) -> int:
    """Write the catalogue as Backstage entities (Groups, Systems, Components, Resources)."""
    from bot.adapters.repo import GitTree
    from bot.catalogue import judge
    from bot.config import load_config
    from bot.export import as_files, as_yaml, backstage
    from bot.providers import installed, settings_schemas
    from bot.render.wording import plural
    from bot.rules import load_rules

    ctx = _Context(args)
    with GitTree(ctx.root, args.revision) as tree:
        rules = load_rules(tree)
        catalogue = judge(tree, rules, ctx.store)
        resources = catalogue.resources(catalogue.identities())
        organization = args.organization or load_config(tree, settings_schemas(installed())).organization
    exported = backstage(resources.values(), organization=organization, kinds=rules.described)
    if exported.left_out:
        print(f"note: not exported, since their schemas say nothing about Backstage (x-paved.backstage): "
              f"{', '.join(exported.left_out)}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(as_yaml(exported.entities))
        return EXIT_OK
    target = Path(args.output)
    if target.is_dir() or args.output.endswith(("/", "\\")):
        target.mkdir(parents=True, exist_ok=True)
        for name, text in as_files(exported).items():
            (target / name).write_text(text, encoding="utf-8")
        wrote = plural(len(exported.entities), 'entity', 'entities')
        print(f"wrote {wrote} to {target}/ (catalog-info.yaml lists them)")
    else:
        if not target.parent.is_dir():
            raise UsageError(f"--output {args.output}: the folder {target.parent} does not exist")
        target.write_text(as_yaml(exported.entities), encoding="utf-8")
        print(f"wrote {plural(len(exported.entities), 'entity', 'entities')} to {target}")
    if not organization:
        print("note: no GitHub organisation known (--organization, or github.organization in paved.yaml), "
              "so components have no github.com/project-slug", file=sys.stderr)
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Apply what is not applied yet and check every resource for drift, once, for every platform repo.

    Settings come from the environment, as for `paved worker`. A failed apply is retried only when
    its backoff says so (`--now`: at once). Exit codes: 0 when everything matches the catalogue or
    was healed, 1 when drift remains or an apply failed, 2 when Paved could not check (settings,
    credentials, a repository it cannot read).
    """
    from bot.reconcile_report import as_json, as_text
    from bot.settings import Settings
    from bot.web.jobs import reconcile_once

    done = reconcile_once(Settings.from_env(), force=args.now)
    sys.stdout.write(as_json(done) if args.format == "json" else as_text(done))
    if any(r.errors for r in done):
        return EXIT_USAGE
    return EXIT_OK if all(r.clean for r in done) else EXIT_FINDINGS


def cmd_demo(args: argparse.Namespace) -> int:
    """Tell Paved's story on this machine, offline, in about 15 seconds: a local GitHub (the sandbox forge) and
    Paved's service; a pull request planned, caught on a typo, approved by its owners, merged and applied;
    drift healed; who asked and who approved. Exits 0 only if every step happened. With --keep DIR it all
    stays running in DIR, with the addresses printed, until Ctrl-C."""
    from bot.demo import run_demo  # here, to keep start-up light: only `paved demo` needs it

    return run_demo(args)


# The commands other modules define, each with the module that adds it (`add_commands(subparsers)`).
ELSEWHERE = {"serve": "bot.web.commands", "worker": "bot.web.commands", "ci": "bot.ci",
             "sandbox": "bot.sandbox.commands", "setup": "bot.web.setup"}


def _add_commands_from(module_name: str, commands: Any) -> None:
    module = importlib.import_module(module_name)
    module.add_commands(commands)
    if module_name == ELSEWHERE["sandbox"]:
        commands.choices["sandbox"].set_defaults(func=module.run)


class _ShowVersion(argparse.Action):
    """`paved --version`: the installed distribution's version, read only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("paved")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown (not installed)"
        print(f"paved {found}")
        parser.exit()


def _first_line(func: Any) -> str:
    """A command's line in `paved --help`: its docstring up to the end of the first sentence or clause."""
    import re

    return re.split(r"[.:] ", " ".join((func.__doc__ or "").split()), maxsplit=1)[0].rstrip(".")


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of `argv`: its first argument that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `paved` parser. The commands other modules define are added only when `argv` names one of
    them, or names no command Paved knows (`paved --help`, a typo), for argparse to list them all."""
    parser = argparse.ArgumentParser(
        prog="paved", description="Paved: self-service platform requests through pull requests.")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action=_ShowVersion, nargs=0, help="print Paved's version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Any, *, repo: bool = True, cache: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=_first_line(func), description=func.__doc__)
        sub.set_defaults(func=func)
        _accept_verbose(sub)
        if repo:
            sub.add_argument("--repo", metavar="DIR", help="the platform repo (default: found from the current folder)")
        if cache:
            sub.add_argument("--no-cache", action="store_true", help="judge every file again, ignoring the cache")
        return sub

    validate = add("validate", cmd_validate)
    validate.add_argument("path", nargs="?", help="report only on this file or folder (default: all); the "
                          "whole repo is judged still, and the last line says what was found elsewhere")
    validate.add_argument("--format", choices=["text", "json", "github"], default="text")

    plan = add("plan", cmd_plan)
    plan.add_argument("--base", required=True, metavar="REF", help="the revision the change goes into")
    plan.add_argument("--head", metavar="REF", help="the revision with the change (default: the working tree)")
    plan.add_argument("--format", choices=["text", "markdown", "json", "github"], default="text")
    plan.add_argument("--repo-url", metavar="URL", help="web address of the repo, for links in Markdown")

    add("test", cmd_test, cache=False)

    explain = add("explain", cmd_explain, cache=False)
    explain.add_argument("kind", metavar="KIND")
    explain.add_argument("--format", choices=["text", "markdown"], default="text")

    new = add("new", cmd_new)
    new.add_argument("kind", metavar="KIND")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--owner", metavar="TEAM", help="the owning team (default: a Team owns itself; anything "
                     "else, platform)")
    new.add_argument("--stdout", action="store_true", help="print the request instead of writing the file")

    init = add("init", cmd_init, repo=False, cache=False)
    init.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where (default: the current folder)")
    init.add_argument("--org", metavar="ORG", help="the GitHub organisation (for CODEOWNERS and paved.yaml)")
    init.add_argument("--team", default="platform", metavar="NAME", help="the platform team (default: platform)")
    init.add_argument("--maintainer", action="append", metavar="LOGIN",
                      help="a GitHub login of the platform team; repeat for more (default: `git config github.user`)")
    init.add_argument("--upgrade", action="store_true",
                      help="show what this Paved's starter rules would change in the platform repo at DIR")

    audit = add("audit", cmd_audit)
    audit.add_argument("resource", nargs="?", metavar="KIND/NAME", help="only this resource")
    audit.add_argument("--since", metavar="DATE", help="only what happened from DATE on (ISO, e.g. 2026-11-01)")
    audit.add_argument("--format", choices=["text", "json", "csv"], default="text")
    audit.add_argument("--offline", action="store_true", help="do not fetch the notes from origin first")

    stats = add("stats", cmd_stats)
    stats.add_argument("--since", metavar="DATE", help="only pull requests and applies from DATE on (ISO date)")
    stats.add_argument("--format", choices=["text", "json", "csv"], default="text")
    stats.add_argument("--offline", action="store_true", help="do not fetch the notes from origin first")

    standards = add("standards", cmd_standards, cache=False)
    standards.add_argument("resource", nargs="?", metavar="KIND/NAME", help="only this resource (or NAME)")
    standards.add_argument("--team", metavar="TEAM", help="only the resources TEAM owns")
    standards.add_argument("--failing", action="store_true", help="only the resources failing a standard")
    standards.add_argument("--format", choices=["text", "json"], default="text")
    standards.add_argument("--offline", action="store_true", help="do not fetch the notes from origin first")

    export = add("export", cmd_export)
    export.add_argument("target", choices=["backstage"], help="what to export for (backstage)")
    export.add_argument("--revision", default="HEAD", metavar="REF", help="the revision to export (default: HEAD)")
    export.add_argument("--organization", metavar="ORG", help="GitHub organisation of the repositories "
                        "(default: github.organization in paved.yaml)")
    export.add_argument("--output", metavar="PATH", help="a file, or a folder (existing, or ending in /) for one "
                        "file per entity; default: standard output")

    demo = add("demo", cmd_demo, repo=False, cache=False)
    demo.add_argument("--keep", metavar="DIR", help="build it all in DIR (a new or empty folder, or one an earlier "
                      "demo used) and leave it running")

    reconcile = add("reconcile", cmd_reconcile, repo=False, cache=False)
    reconcile.add_argument("--now", action="store_true", help="retry a failed apply now, whatever its backoff says")
    reconcile.add_argument("--format", choices=["text", "json"], default="text")

    word = _command_of(sys.argv[1:] if argv is None else argv)
    if word in ELSEWHERE:
        _add_commands_from(ELSEWHERE[word], commands)
    elif word not in commands.choices:
        for module_name in dict.fromkeys(ELSEWHERE.values()):
            _add_commands_from(module_name, commands)
    for sub in commands.choices.values():
        _accept_verbose(sub)
    return parser


VERBOSE_HELP = "log what Paved does (before or after the command)"


def _accept_verbose(sub: argparse.ArgumentParser) -> None:
    """Let `paved COMMAND --verbose` mean what `paved --verbose COMMAND` does. Left unset when not given, so
    the option before the command still counts; a command with a -v or --verbose of its own keeps it."""
    for names in (("-v", "--verbose"), ("--verbose",)):
        try:
            sub.add_argument(*names, dest="verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
            return
        except argparse.ArgumentError:
            continue


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except PavedError as exc:
        print(f"paved: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a fault in Paved itself: say so in one line, keep the traceback for -v
        logging.getLogger("paved").debug("internal error", exc_info=True)
        print(f"paved: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: run again with --verbose for the details, and report them to the platform team.",
              file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
