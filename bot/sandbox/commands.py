"""`paved sandbox …`: run the sandbox forge and script it from a shell.

`paved sandbox serve --data DIR` starts a forge on 127.0.0.1 and keeps it running until Ctrl-C. It
writes `DIR/sandbox.json` (its URL) and `DIR/admin-token`; every other command finds the running
forge through those two files (same `--data`) and calls its administration API
(`POST /_sandbox/call/OPERATION`, see `endpoints/admin.py`) with the admin token. Commands that act
as a person take `--as LOGIN`, and the forge checks that person's permissions as GitHub would.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# The forge's files in its data folder; written by `api.Sandbox`, read here. Kept apart from `api` so
# that adding these commands to `paved` costs no import of the forge itself.
ADMIN_TOKEN_FILE = "admin-token"
STATE_FILE = "sandbox.json"

DEFAULT_DATA = ".paved-sandbox"


class CliError(Exception):
    """Raised when a command cannot reach the forge or the forge refuses it; the message says why."""


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sandbox` command group to an argparse CLI."""
    sandbox = subparsers.add_parser("sandbox", help="a local GitHub-compatible forge for demos and tests",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = _GuardedParser.wrap(commands.add_parser(name, help=help, description=help))
        parser.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                            help=f"the forge's data folder (default: {DEFAULT_DATA})")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        return parser

    serve = command("serve", "run the forge until Ctrl-C")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    serve.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                       help="fail this fraction (0 to 1) of REST calls on purpose, as GitHub sometimes does")
    serve.add_argument("--fault-kinds", default="500,502,secondary,slow", metavar="KINDS",
                       help="which faults, comma-separated: 500, 502, secondary (a 403 secondary rate limit), "
                            "slow (answered late), drop (done, never answered; pushes too) "
                            "(default: %(default)s)")
    serve.add_argument("--fault-seed", type=int, default=0, help="the seed the faults are drawn from (default: 0)")
    serve.add_argument("--slow-seconds", type=float, default=2.0, help="how late a slow answer leaves (default: 2)")
    serve.set_defaults(handler=_serve)

    user = command("create-user", "create a user and print their personal access token")
    user.add_argument("login")
    user.set_defaults(handler=lambda a: _call(a, "create_user", login=a.login))

    org = command("create-org", "create an organization")
    org.add_argument("login")
    org.add_argument("--owner", action="append", default=[], help="an owner's login (repeatable)")
    org.add_argument("--member", action="append", default=[], help="a member's login (repeatable)")
    org.set_defaults(handler=lambda a: _call(a, "create_org", login=a.login, owners=a.owner, members=a.member))

    repo = command("create-repo", "create a repository from the files of a folder")
    repo.add_argument("repository", help="OWNER/NAME")
    repo.add_argument("--from", dest="folder", type=Path, required=True, help="folder whose files become main")
    repo.add_argument("--as", dest="actor", help="who creates it (default: the sandbox administrator)")
    repo.add_argument("--private", action="store_true")
    repo.set_defaults(handler=lambda a: _call(a, "create_repo_from_folder", owner=_split(a.repository)["owner"],
                                              name=_split(a.repository)["repo"], folder=str(a.folder.resolve()),
                                              by=a.actor, private=a.private))

    collaborator = command("add-collaborator", "give a user a role on a repository")
    collaborator.add_argument("repository", help="OWNER/NAME")
    collaborator.add_argument("login")
    collaborator.add_argument("--permission", default="write",
                              choices=["read", "triage", "write", "maintain", "admin"])
    collaborator.set_defaults(handler=lambda a: _call(a, "add_collaborator", **_split(a.repository),
                                                      login=a.login, permission=a.permission))

    app = command("create-app", "create a GitHub App; its private key is written to --key-file")
    app.add_argument("owner")
    app.add_argument("name")
    app.add_argument("--permission", action="append", default=[], metavar="NAME=LEVEL",
                     help="e.g. contents=write (repeatable; default: metadata=read)")
    app.add_argument("--webhook-url")
    app.add_argument("--webhook-secret", default="")
    app.add_argument("--key-file", type=Path, required=True, help="where to write the private key (PEM)")
    app.set_defaults(handler=_create_app)

    install = command("install-app", "install an app on an org or user (all repositories unless --repo)")
    install.add_argument("app", help="the app's slug or id")
    install.add_argument("account")
    install.add_argument("--repo", action="append", help="only this repository (repeatable)")
    install.set_defaults(handler=lambda a: _call(a, "install_app", app=a.app, account=a.account,
                                                 repositories=a.repo))

    hook = command("add-webhook", "register a repository webhook")
    hook.add_argument("repository", help="OWNER/NAME")
    hook.add_argument("url")
    hook.add_argument("--secret", default="")
    hook.add_argument("--event", action="append", help="only this event (repeatable; default: all)")
    hook.set_defaults(handler=lambda a: _call(a, "register_webhook", **_split(a.repository), url=a.url,
                                              secret=a.secret, events=a.event or ["*"]))

    pr = command("open-pr", "open a pull request from a branch")
    pr.add_argument("repository", help="OWNER/NAME")
    pr.add_argument("--head", required=True, help="the branch with the changes")
    pr.add_argument("--base", help="the branch to merge into (default: the default branch)")
    pr.add_argument("--title", required=True)
    pr.add_argument("--body")
    pr.add_argument("--as", dest="actor", required=True, help="who opens it")
    pr.set_defaults(handler=lambda a: _call(a, "open_pull_request", **_split(a.repository), head=a.head,
                                            base=a.base, title=a.title, body=a.body, by=a.actor))

    comment = command("comment", "comment on a pull request or issue")
    comment.add_argument("repository", help="OWNER/NAME")
    comment.add_argument("number", type=int)
    comment.add_argument("body")
    comment.add_argument("--as", dest="actor", required=True)
    comment.set_defaults(handler=lambda a: _call(a, "comment", **_split(a.repository), number=a.number,
                                                 body=a.body, by=a.actor))

    approve = command("approve", "approve a pull request")
    approve.add_argument("repository", help="OWNER/NAME")
    approve.add_argument("number", type=int)
    approve.add_argument("--as", dest="actor", required=True)
    approve.set_defaults(handler=lambda a: _call(a, "approve", **_split(a.repository), number=a.number, by=a.actor))

    merge = command("merge", "merge a pull request")
    merge.add_argument("repository", help="OWNER/NAME")
    merge.add_argument("number", type=int)
    merge.add_argument("--as", dest="actor", required=True)
    merge.add_argument("--method", default="merge", choices=["merge", "squash", "rebase"])
    merge.set_defaults(handler=lambda a: _call(a, "merge", **_split(a.repository), number=a.number, by=a.actor,
                                               method=a.method))

    deliveries = command("deliveries", "list webhook deliveries")
    deliveries.add_argument("--event")
    deliveries.set_defaults(handler=lambda a: _call(a, "deliveries", event=a.event))


class _GuardedParser:
    """Makes each command's `handler` return an exit code even when it fails, so any CLI that
    dispatches on `args.handler(args)` gets `error: …` on stderr and 1, never a traceback."""

    @staticmethod
    def wrap(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        original = parser.set_defaults

        def set_defaults(**kwargs: Any) -> None:
            if "handler" in kwargs:
                kwargs["handler"] = _guarded(kwargs["handler"])
            original(**kwargs)

        parser.set_defaults = set_defaults  # type: ignore[method-assign]
        return parser


def _guarded(handler: Any) -> Any:
    def run_handler(args: argparse.Namespace) -> int:
        try:
            code: int = handler(args)
        except CliError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return code

    return run_handler


def _split(repository: str) -> dict[str, str]:
    owner, _, name = repository.partition("/")
    if not owner or not name:
        raise CliError(f"{repository!r}: expected OWNER/NAME")
    return {"owner": owner, "repo": name}


def _serve(args: argparse.Namespace) -> int:
    from .api import Sandbox
    from .faults import FaultPlan

    kinds = tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip())
    try:
        FaultPlan(args.faults, kinds, args.fault_seed, args.slow_seconds)
    except (ValueError, re.error) as exc:
        raise CliError(f"--faults: {exc}") from exc
    stop = threading.Event()
    # Ctrl-C and SIGTERM both end the loop below, so the forge always stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Sandbox.start(args.data, port=args.port) as forge:
        if args.faults:
            forge.faults(args.faults, kinds, seed=args.fault_seed, slow_seconds=args.slow_seconds)
        print(f"Sandbox forge running at {forge.url}")
        print(f"  REST API:    {forge.api_url}")
        print(f"  git:         {forge.url}/OWNER/REPO.git")
        print(f"  data folder: {args.data}")
        if args.faults:
            print(f"  faults:      {args.faults:.0%} of REST calls ({args.fault_kinds}), seed {args.fault_seed}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    print("Sandbox forge stopped.")
    return 0


def _create_app(args: argparse.Namespace) -> int:
    permissions = {}
    for item in args.permission:
        name, _, level = item.partition("=")
        if level not in ("read", "write", "admin"):
            raise CliError(f"{item!r}: expected NAME=read|write|admin")
        permissions[name] = level
    result = _request(args.data, "create_app", {
        "owner": args.owner, "name": args.name, "permissions": permissions or None,
        "webhook_url": args.webhook_url, "webhook_secret": args.webhook_secret,
    })
    key = result.pop("private_key")
    args.key_file.write_text(key)
    args.key_file.chmod(0o600)
    _print(args, {**result, "key_file": str(args.key_file)})
    return 0


def _call(args: argparse.Namespace, operation: str, **arguments: Any) -> int:
    _print(args, _request(args.data, operation, arguments))
    return 0


def _print(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(json.dumps(result, indent=2))
    elif isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    elif isinstance(result, list):
        for item in result:
            print(json.dumps(item) if not isinstance(item, dict) else "  ".join(
                f"{k}={item[k]}" for k in ("id", "event", "action", "status_code", "guid") if k in item))
    elif result is not None:
        print(result)


def _request(data: Path, operation: str, arguments: dict[str, Any]) -> Any:
    try:
        state = json.loads((data / STATE_FILE).read_text())
        token = (data / ADMIN_TOKEN_FILE).read_text().strip()
    except (OSError, ValueError) as exc:
        raise CliError(f"no running sandbox forge with data in {data} (start one with `paved sandbox serve`)") from exc
    request = urllib.request.Request(
        f"{state['url']}/_sandbox/call/{operation}", method="POST",
        data=json.dumps({k: v for k, v in arguments.items() if v is not None}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())["result"]
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", "")
        except ValueError:
            message = ""
        raise CliError(f"the forge refused {operation}: {exc.code} {message}".rstrip()) from exc
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach the sandbox forge at {state['url']}: {exc.reason}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed `sandbox` command (`args.handler(args)`): 0 on success, 1 with the reason on stderr."""
    code: int = args.handler(args)
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.sandbox …`: the same commands as `paved sandbox …`."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(build_parser().parse_args(["sandbox", *(argv if argv is not None else sys.argv[1:])]))
