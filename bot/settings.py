"""Paved's settings: the only module that reads the environment.

Settings are read once, when a command starts (never at import time), into one typed object that is
passed to whatever needs it. Secret values are wrapped in `Secret`, which never shows its value in a
`repr`, a log line or an error message; `check_service` tells `paved serve` and `paved worker` everything
that is missing or unsafe in one message, before they start.
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.errors import ConfigurationError

Command = Literal["serve", "worker"]
LogFormat = Literal["text", "json"]

DEFAULT_GITHUB_API_URL = "https://api.github.com"
# Values people paste from examples. Compared case-insensitively; any secret shorter than
# MIN_SECRET_LENGTH is refused too, since a webhook secret is only as strong as it is long.
PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "changethis", "secret", "mysecret", "my-secret", "webhook-secret",
    "webhooksecret", "password", "passw0rd", "token", "your-token", "your-secret", "example", "test", "testing",
    "todo", "fixme", "xxx", "dummy", "default", "none", "null", "placeholder", "replace-me", "replaceme",
})
MIN_SECRET_LENGTH = 16
CREDENTIALS = ("PAVED_GITHUB_TOKEN, or PAVED_GITHUB_APP_ID with PAVED_GITHUB_PRIVATE_KEY or "
               "PAVED_GITHUB_PRIVATE_KEY_FILE")


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that shows as `********` wherever it is printed; `reveal()` gives the value."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"


@dataclass(frozen=True, slots=True)
class Settings:
    """How this Paved process is set up.

    `data_dir` holds Paved's own state: the results cache, the embedded queue and the delivery log.
    `color` says whether terminal output may use ANSI colours when it goes to a terminal. The rest is
    for `paved serve` and `paved worker`: how to reach GitHub (`github_api_url`, and an App or a token),
    the webhook secret, where the queue lives (`redis_url`, or SQLite in `data_dir`), and how many
    consumer threads run jobs (`queue_workers`; None picks by command, see `consumer_threads`), and how
    long leases last after their holder's last renewal (`lease_seconds`).
    """

    data_dir: Path
    color: bool = True
    github_api_url: str = DEFAULT_GITHUB_API_URL
    github_app_id: str | None = None
    github_private_key: Secret | None = None
    github_private_key_file: Path | None = None
    github_token: Secret | None = None
    # Whom the token acts as, where GitHub does not say (`GET /user` refuses the Actions job token).
    github_login: str | None = None
    webhook_secret: Secret | None = None
    redis_url: Secret | None = None  # a secret: the URL may carry the Redis password
    queue_name: str = "paved"
    queue_workers: int | None = None
    queue_immediate: bool = False
    reconcile_minutes: int = 15
    # The share of GitHub's hourly request budget that reconcile leaves to plans and applies: its drift check
    # stops observing when no more is left (`bot.handlers.drift.Pacing`). A plan costs some tens of requests
    # and an apply about ten per resource it changes, so 20% of an installation's 5,000 (1,000 requests) keeps
    # room for a busy hour of pull requests and a large merge, while the other 80% still covers a first
    # reconcile of about 1,000 services, before GitHub's ETags make the next ones nearly free.
    reconcile_reserve: float = 0.2
    # How long a lease (a repository's apply, a pull request's plan, a running job's delivery) outlives its
    # holder's last renewal; holders renew three times as often. Shorter frees a killed worker's work sooner
    # and costs more renewals.
    lease_seconds: float = 60.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: LogFormat = "text"
    log_level: str = "INFO"
    repositories: tuple[str, ...] = ()
    # The platform repo the web catalogue shows (owner/name); None: the only entry of `repositories`.
    catalogue_repo: str | None = None
    # Signing in to the catalogue (`bot/web/signin.py`): the GitHub App's OAuth client, the key that signs
    # session cookies and the address visitors reach Paved at. Without them the catalogue is open, which
    # `check_service` allows only on loopback or when `allow_open` says so.
    github_client_id: str | None = None
    github_client_secret: Secret | None = None
    session_secret: Secret | None = None
    public_url: str | None = None
    allow_open: bool = False
    # Every variable of the environment that holds a server's address (a PostgreSQL connection string, a
    # `redis://` or other non-HTTP URL), by name: a platform repo's `paved.yaml` names which one a
    # provider's resources live on (never the address itself), and each is scrubbed from the logs.
    servers: Mapping[str, Secret] = field(default_factory=dict, repr=False)

    def server(self, variable: str) -> Secret | None:
        """The server address in `variable`, or None when it is not set (or holds no address)."""
        return self.servers.get(variable)

    @property
    def signin(self) -> bool:
        """Whether visitors of the catalogue sign in with GitHub (any sign-in setting asks for it)."""
        return any(v is not None for v in (self.github_client_id, self.github_client_secret, self.session_secret))

    @property
    def github_web_url(self) -> str:
        """GitHub's web address, where visitors sign in: github.com for api.github.com, else the API's host."""
        if self.github_api_url == DEFAULT_GITHUB_API_URL:
            return "https://github.com"
        return self.github_api_url.removesuffix("/api/v3")

    @property
    def mirrors(self) -> Path:
        """Where local mirrors of platform repos are kept."""
        return self.data_dir / "mirrors"

    @property
    def catalogue_repository(self) -> str | None:
        """The platform repo the web catalogue shows: PAVED_CATALOGUE_REPO, else the only PAVED_REPOSITORIES entry."""
        if self.catalogue_repo is not None:
            return self.catalogue_repo
        return self.repositories[0] if len(self.repositories) == 1 else None

    @property
    def polite(self) -> bool:
        """Whether to pace GitHub requests as GitHub asks; a forge on this machine needs no pacing."""
        host = urllib.parse.urlsplit(self.github_api_url).hostname or ""
        return host not in ("127.0.0.1", "localhost", "::1")

    @property
    def catalogue_index(self) -> Path:
        """Where judged files and catalogue states are kept between runs (see `bot.catalogue`)."""
        return self.data_dir / "catalogue.sqlite"

    @property
    def queue_db(self) -> Path:
        """The embedded queue (SQLite), used when no Redis URL is set."""
        return self.data_dir / "queue.sqlite"

    @property
    def deliveries_db(self) -> Path:
        """The delivery log (SQLite), used when no Redis URL is set."""
        return self.data_dir / "deliveries.sqlite"

    @property
    def redis_display(self) -> str | None:
        """The Redis URL with any password masked, for log lines."""
        return None if self.redis_url is None else redact_url(self.redis_url.reveal())

    def consumer_threads(self, command: Command) -> int:
        """How many threads consume the queue in `command`.

        `paved worker` always consumes (2 threads unless set). `paved serve` consumes with 2 threads on the
        embedded queue, and not at all when Redis is configured (replicas then only enqueue, and `paved
        worker` processes run the jobs), unless `queue_workers` asks for threads.
        """
        if self.queue_workers is not None:
            return self.queue_workers
        return 2 if command == "worker" or self.redis_url is None else 0

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret value, so log output can be scrubbed of them."""
        values = [s.reveal() for s in (self.webhook_secret, self.github_token, self.github_private_key,
                                       self.github_client_secret, self.session_secret) if s]
        if self.redis_url is not None:
            password = urllib.parse.urlsplit(self.redis_url.reveal()).password
            if password:
                values.append(password)
        for server in self.servers.values():
            values += [server.reveal(), *_passwords(server.reveal())]
        return tuple(v for v in values if len(v) >= 4)

    def private_key(self) -> Secret | None:
        """The GitHub App's private key, from PAVED_GITHUB_PRIVATE_KEY or the file PAVED_GITHUB_PRIVATE_KEY_FILE."""
        if self.github_private_key is not None:
            return self.github_private_key
        if self.github_private_key_file is None:
            return None
        try:
            return Secret(self.github_private_key_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"PAVED_GITHUB_PRIVATE_KEY_FILE={self.github_private_key_file} cannot be read: "
                f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from exc

    def check_service(self, command: Command) -> None:
        """Raise `ConfigurationError` naming every variable `paved serve` or `paved worker` lacks or refuses.

        `serve` needs the webhook secret, and GitHub credentials when it runs jobs itself; `worker` needs
        GitHub credentials. Placeholder and short secrets are refused; no value is ever echoed.
        """
        problems: list[str] = []
        runs_jobs = command == "worker" or self.queue_immediate or self.consumer_threads(command) > 0
        if command == "serve":
            problems += _secret_problems("PAVED_WEBHOOK_SECRET", self.webhook_secret)
        if runs_jobs:
            problems += self._github_problems()
        if command == "serve":
            problems += self._signin_problems(credentials_checked=runs_jobs)
        if command == "worker" and self.consumer_threads(command) < 1 and not self.queue_immediate:
            problems.append("PAVED_QUEUE_WORKERS must be at least 1 for paved worker")
        if not self.github_api_url.startswith(("https://", "http://")):
            problems.append("PAVED_GITHUB_API_URL must be an http(s) URL")
        if self.redis_url is not None and urllib.parse.urlsplit(self.redis_url.reveal()).scheme not in (
                "redis", "rediss", "unix"):
            problems.append("PAVED_REDIS_URL must start with redis://, rediss:// or unix://")
        if problems:
            raise ConfigurationError(
                f"paved {command} cannot start: " + "; ".join(problems),
                hint="Set these in the environment of the process (see `paved " + command + " --help`).")

    def _signin_problems(self, *, credentials_checked: bool) -> list[str]:
        if not self.signin:
            if self.allow_open or is_loopback(self.host):
                return []
            return [f"the catalogue would be open to anyone who reaches {self.host}: set PAVED_GITHUB_CLIENT_ID, "
                    "PAVED_GITHUB_CLIENT_SECRET and PAVED_SESSION_SECRET so that visitors sign in with GitHub, "
                    "listen on 127.0.0.1, or set PAVED_ALLOW_OPEN=1 to serve it open on purpose"]
        problems: list[str] = []
        if self.github_client_id is None:
            problems.append("PAVED_GITHUB_CLIENT_ID is not set (the other sign-in settings are, so the App's client "
                            "id is needed too)")
        problems += _secret_problems("PAVED_GITHUB_CLIENT_SECRET", self.github_client_secret)
        problems += _secret_problems("PAVED_SESSION_SECRET", self.session_secret)
        if self.public_url is not None:
            parts = urllib.parse.urlsplit(self.public_url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                problems.append("PAVED_PUBLIC_URL must be an http(s) URL")
            elif parts.scheme == "http" and not is_loopback(parts.hostname):
                problems.append("PAVED_PUBLIC_URL must be https:// (session cookies travel with it)")
        elif not is_loopback(self.host):
            problems.append("PAVED_PUBLIC_URL is not set (GitHub sends visitors back to it after they sign in)")
        if self.catalogue_repository is None:
            problems.append("PAVED_CATALOGUE_REPO is not set (who may sign in follows read access to that repo)")
        if not credentials_checked:  # visitors' access to the platform repo is read with Paved's own credentials
            problems += self._github_problems()
        return problems

    def _github_problems(self) -> list[str]:
        app_key_set = self.github_private_key is not None or self.github_private_key_file is not None
        if self.github_app_id is None and not app_key_set:
            if self.github_token is None:
                return [f"GitHub credentials are not set: {CREDENTIALS}"]
            return _secret_problems("PAVED_GITHUB_TOKEN", self.github_token)
        problems: list[str] = []
        if self.github_app_id is None:
            problems.append("PAVED_GITHUB_APP_ID is not set (the private key is, so the App id is needed too)")
        elif not self.github_app_id.isdigit():
            problems.append("PAVED_GITHUB_APP_ID must be the App's numeric id")
        if self.github_private_key is not None and self.github_private_key_file is not None:
            problems.append("set only one of PAVED_GITHUB_PRIVATE_KEY and PAVED_GITHUB_PRIVATE_KEY_FILE")
        elif not app_key_set:
            problems.append("PAVED_GITHUB_PRIVATE_KEY or PAVED_GITHUB_PRIVATE_KEY_FILE is not set "
                            "(the App id is, so its private key is needed too)")
        else:
            try:
                key = self.private_key()
            except ConfigurationError as exc:
                problems.append(exc.message)
            else:
                if key is None or "PRIVATE KEY-----" not in key.reveal():
                    source = "PAVED_GITHUB_PRIVATE_KEY" if self.github_private_key else "PAVED_GITHUB_PRIVATE_KEY_FILE"
                    problems.append(f"{source} does not hold a PEM private key (-----BEGIN ... PRIVATE KEY-----)")
        return problems

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: the process environment over Paved's env file, see
        `environment`); unset or empty means default."""
        env = environment() if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def secret(name: str) -> Secret | None:
            value = env.get(name, "")
            # A key pasted into one line keeps its line breaks as "\n"; the value itself is never trimmed
            # beyond surrounding whitespace, so a signature computed with it matches GitHub's.
            value = value.strip().replace("\\n", "\n") if name == "PAVED_GITHUB_PRIVATE_KEY" else value.strip()
            return Secret(value) if value else None

        def number(name: str, default: int | None, lowest: int) -> int | None:
            value = text(name)
            if value is None:
                return default
            try:
                parsed = int(value)
            except ValueError:
                parsed = lowest - 1
            if parsed < lowest:
                raise ConfigurationError(f"{name}={value} is not a whole number of at least {lowest}")
            return parsed

        data_dir = data_dir_of(env)
        color = "NO_COLOR" not in env and env.get("TERM") != "dumb"
        key_file = text("PAVED_GITHUB_PRIVATE_KEY_FILE")
        log_format = (text("PAVED_LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigurationError(f"PAVED_LOG_FORMAT={log_format} is neither text nor json")
        log_level = (text("PAVED_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigurationError(f"PAVED_LOG_LEVEL={log_level} is not one of DEBUG, INFO, WARNING, ERROR")
        port = number("PAVED_PORT", 8000, 1)
        if port is not None and port > 65535:
            raise ConfigurationError(f"PAVED_PORT={port} is not a TCP port")
        reserve = number("PAVED_RECONCILE_RESERVE", 20, 0) or 0
        if reserve > 90:  # reconcile must keep some budget to check anything with
            raise ConfigurationError(f"PAVED_RECONCILE_RESERVE={reserve} is more than 90 (a percentage of the limit)")
        catalogue_repo = text("PAVED_CATALOGUE_REPO")
        if catalogue_repo is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", catalogue_repo):
            raise ConfigurationError(f"PAVED_CATALOGUE_REPO={catalogue_repo} is not owner/name")
        return cls(
            data_dir=data_dir,
            color=color,
            github_api_url=(text("PAVED_GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/"),
            github_app_id=text("PAVED_GITHUB_APP_ID"),
            github_private_key=secret("PAVED_GITHUB_PRIVATE_KEY"),
            github_private_key_file=Path(key_file).expanduser() if key_file else None,
            github_token=secret("PAVED_GITHUB_TOKEN"),
            webhook_secret=secret("PAVED_WEBHOOK_SECRET"),
            redis_url=secret("PAVED_REDIS_URL"),
            queue_name=text("PAVED_QUEUE_NAME") or "paved",
            queue_workers=number("PAVED_QUEUE_WORKERS", None, 0),
            queue_immediate=(text("PAVED_QUEUE_IMMEDIATE") or "").lower() in ("1", "true", "yes", "on"),
            reconcile_minutes=number("PAVED_RECONCILE_MINUTES", 15, 0) or 0,
            reconcile_reserve=reserve / 100,
            # Renewed every third of it, a lease under 3 seconds would be renewed more often than a store
            # under load answers.
            lease_seconds=float(number("PAVED_LEASE_SECONDS", 60, 3) or 60),
            host=text("PAVED_HOST") or "127.0.0.1",
            port=port or 8000,
            log_format="json" if log_format == "json" else "text",
            log_level=log_level,
            repositories=tuple(r.strip() for r in (text("PAVED_REPOSITORIES") or "").split(",") if r.strip()),
            catalogue_repo=catalogue_repo,
            github_client_id=text("PAVED_GITHUB_CLIENT_ID"),
            github_client_secret=secret("PAVED_GITHUB_CLIENT_SECRET"),
            session_secret=secret("PAVED_SESSION_SECRET"),
            public_url=(text("PAVED_PUBLIC_URL") or "").rstrip("/") or None,
            allow_open=(text("PAVED_ALLOW_OPEN") or "").lower() in ("1", "true", "yes", "on"),
            servers={name: Secret(value.strip()) for name, value in env.items()
                     if name not in OWN_SERVERS and looks_like_a_server(value)},
        )


def data_dir_of(env: Mapping[str, str]) -> Path:
    """Paved's data folder: PAVED_DATA_DIR, else `paved` in XDG_DATA_HOME, else in ~/.local/share."""
    named = env.get("PAVED_DATA_DIR", "").strip()
    if named:
        return Path(named).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(xdg) / "paved"


def _secret_problems(name: str, value: Secret | None) -> list[str]:
    if value is None:
        return [f"{name} is not set"]
    revealed = value.reveal()
    if revealed.lower() in PLACEHOLDERS or len(set(revealed)) < 4:
        advice = {"PAVED_GITHUB_TOKEN": "set the token GitHub issued",
                  "PAVED_GITHUB_CLIENT_SECRET": "set a client secret GitHub generated for the App",
                  "PAVED_SESSION_SECRET": "use a long random value, such as `openssl rand -hex 32` prints",
                  }.get(name, "use a long random value, such as `openssl rand -hex 32` prints, here and in GitHub's "
                              "webhook")
        return [f"{name} is a placeholder value ({advice})"]
    if len(revealed) < MIN_SECRET_LENGTH:
        return [f"{name} is {len(revealed)} characters long; use at least {MIN_SECRET_LENGTH}"]
    return []


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name to listen on or reach) is this machine only."""
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `********`."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:********@{netloc}"))


# -- GitHub Actions (`paved ci`) ------------------------------------------------------------------------------

# What `paved ci` cannot run without, in the order the error message lists them. GitHub's runner sets all
# but the token, which a workflow passes in explicitly (`GITHUB_TOKEN: ${{ github.token }}`).
ACTIONS_REQUIRED = ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_TOKEN", "GITHUB_REPOSITORY")
# Who writes with a workflow's job token: GitHub's own Actions App, whose bot signs its comments.
ACTIONS_LOGIN = "github-actions[bot]"
DEFAULT_GITHUB_SERVER_URL = "https://github.com"


@dataclass(frozen=True, slots=True)
class ActionsSettings:
    """How `paved ci` runs inside a GitHub Actions job: the event that started it and how to reach GitHub.

    `event_path` is the file holding the event's payload (the webhook payload GitHub would deliver);
    `token` is the job's `GITHUB_TOKEN`; `step_summary`, when set, is the file the job's summary page is
    read from. `run_id` and `run_attempt` name the run, so its log lines can be told apart.
    `app_slug` names the GitHub App whose installation token `token` is, when it is not the job's own
    (`actions/create-github-app-token` gives it as `app-slug`), so Paved knows its own comments by their
    author. `plan_dir` is where a pull request's plan is left for a later job to publish, when the token
    may not publish it (a fork's), and where that job finds it.
    """

    event_name: str
    event_path: Path
    token: Secret
    repository: str
    data_dir: Path
    api_url: str = DEFAULT_GITHUB_API_URL
    server_url: str = DEFAULT_GITHUB_SERVER_URL
    step_summary: Path | None = None
    run_id: str | None = None
    run_attempt: str | None = None
    app_slug: str | None = None
    plan_dir: Path | None = None

    @property
    def login(self) -> str:
        """Who the token acts as on GitHub: the App's bot, or GitHub Actions' own."""
        return f"{self.app_slug}[bot]" if self.app_slug else ACTIONS_LOGIN

    @property
    def repo_url(self) -> str:
        """The repository's web address, for links to files in the plan."""
        return f"{self.server_url}/{self.repository}"

    def service_settings(self) -> Settings:
        """The same settings the service would have with a token, so `paved ci` builds what it builds."""
        return Settings(data_dir=self.data_dir, color=False, github_api_url=self.api_url, github_token=self.token,
                        github_login=self.login)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ActionsSettings:
        """Read the Actions variables from `env` (default: the process environment).

        Raises `ConfigurationError` naming every required variable that is missing or unusable at once.
        """
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        missing = [name for name in ACTIONS_REQUIRED if text(name) is None]
        problems = [f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"] if missing else []
        repository = text("GITHUB_REPOSITORY") or ""
        if repository and repository.count("/") != 1:
            problems.append(f"GITHUB_REPOSITORY={repository} is not owner/name")
        api_url = (text("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/")
        server_url = (text("GITHUB_SERVER_URL") or DEFAULT_GITHUB_SERVER_URL).rstrip("/")
        for name, url in (("GITHUB_API_URL", api_url), ("GITHUB_SERVER_URL", server_url)):
            if not url.startswith(("https://", "http://")):
                problems.append(f"{name} must be an http(s) URL")
        app_slug = text("PAVED_APP_SLUG")
        if app_slug and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", app_slug):
            problems.append(f"PAVED_APP_SLUG={app_slug} is not a GitHub App's slug")
        if problems:
            raise ConfigurationError(
                "paved ci cannot run: " + "; ".join(problems),
                hint="Run it as a step of a GitHub Actions job, which sets the GITHUB_ variables, and pass the "
                     "job's token with `env: GITHUB_TOKEN: ${{ github.token }}`.")
        # A runner's temp folder is emptied after each job, which suits a cache no later job could reuse
        # anyway; elsewhere the data folder is found as for every other command.
        runner_temp = text("RUNNER_TEMP")
        if runner_temp and not text("PAVED_DATA_DIR"):
            data_dir = Path(runner_temp) / "paved"
        else:
            data_dir = Settings.from_env({name: env[name] for name in ("PAVED_DATA_DIR", "XDG_DATA_HOME", "HOME")
                                          if name in env}).data_dir
        summary = text("GITHUB_STEP_SUMMARY")
        plan_dir = text("PAVED_PLAN_DIR")
        if plan_dir is None:
            plan_dir = str(Path(runner_temp) / "paved-plan") if runner_temp else str(data_dir / "plan")
        return cls(
            event_name=text("GITHUB_EVENT_NAME") or "",
            event_path=Path(text("GITHUB_EVENT_PATH") or ""),
            token=Secret(text("GITHUB_TOKEN") or ""),
            repository=repository,
            data_dir=data_dir,
            api_url=api_url,
            server_url=server_url,
            step_summary=Path(summary) if summary else None,
            run_id=text("GITHUB_RUN_ID"),
            run_attempt=text("GITHUB_RUN_ATTEMPT"),
            app_slug=app_slug,
            plan_dir=Path(plan_dir),
        )


# Servers Paved keeps its own state on: never handed to a provider, whatever a `paved.yaml` names.
OWN_SERVERS = frozenset({"PAVED_REDIS_URL"})
_CONNINFO = re.compile(r"(?:^|\s)(?:host|hostaddr|dbname|user|port|service)\s*=")
# A server's URL: any scheme but the web's (an API endpoint is not a server a provider keeps things on).
_SERVER_URL = re.compile(r"^(?!https?://)[a-z][a-z0-9+.-]*://\S+$")


def looks_like_a_server(value: str) -> bool:
    """Whether `value` is a server's address: a non-HTTP URL (`postgresql://`, `redis://`, …) or a libpq
    `key=value` connection string."""
    value = value.strip()
    return bool(_SERVER_URL.match(value)) or bool(_CONNINFO.search(value))


def _passwords(address: str) -> list[str]:
    if _SERVER_URL.match(address):
        password = urllib.parse.urlsplit(address).password
        return [urllib.parse.unquote(password)] if password else []
    return re.findall(r"password\s*=\s*'?([^'\s]+)", address)


# -- the env file (`paved setup` writes it, every command reads it) --------------------------------------------

ENV_FILE_VARIABLE = "PAVED_ENV_FILE"
ENV_FILE_NAME = "paved.env"  # in the data folder, when PAVED_ENV_FILE names none
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_LINE = re.compile(r"(?:export[ \t]+)?(?P<name>[^=\s]+)[ \t]*=(?P<value>.*)")


def env_file_of(env: Mapping[str, str]) -> Path:
    """The env file Paved reads: PAVED_ENV_FILE, else `paved.env` in the data folder `env` names."""
    named = env.get(ENV_FILE_VARIABLE, "").strip()
    return Path(named).expanduser() if named else data_dir_of(env) / ENV_FILE_NAME


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: the process environment) over the variables of Paved's env file.

    A variable set (not empty) in `env` wins over the file, so one run can change one setting. The file is
    PAVED_ENV_FILE, which must then exist, else `paved.env` in the data folder when there is one; its data
    folder is the one `env` names (a PAVED_DATA_DIR in the file moves the rest of Paved's data, not the file).
    Raises `ConfigurationError` naming the file (and line) when it cannot be used.
    """
    env = dict(os.environ if env is None else env)
    path = env_file_of(env)
    if not env.get(ENV_FILE_VARIABLE, "").strip() and not path.exists():
        return env
    from_file = read_env_file(path)
    return {**env, **{name: value for name, value in from_file.items() if not env.get(name, "").strip()}}


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file: `NAME=value` lines (`export ` before one, and quotes around a value, are
    allowed), blank lines and `#` comments. Raises `ConfigurationError` when the file cannot be read, others
    than its owner may read or change it (it holds secrets), or a line is not a variable; no value is echoed.
    """
    where = f"the env file {path}"
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{where} cannot be read: {getattr(exc, 'strerror', None) or type(exc).__name__}",
                                 hint="Point PAVED_ENV_FILE at the file `paved setup` wrote, or unset it.") from None
    if mode & 0o077:
        raise ConfigurationError(f"{where} holds secrets, and others than its owner may read or change it "
                                 f"(mode {mode & 0o777:04o})", hint=f"chmod 600 {path}")
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = _ENV_LINE.fullmatch(stripped)
        if found is None or not _ENV_NAME.fullmatch(found["name"]):
            raise ConfigurationError("this line is not NAME=value", path=str(path), line=number)
        name, value = found["name"], found["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name in lines:
            raise ConfigurationError(f"{name} is set twice (lines {lines[name]} and {number})", path=str(path),
                                     line=number)
        values[name], lines[name] = value, number
    return values


def app_environment(*, api_url: str, app_id: int | str, private_key: str, webhook_secret: str | None,
                    client_id: str, client_secret: str, session_secret: str, public_url: str | None = None,
                    catalogue_repo: str | None = None) -> dict[str, str]:
    """The variables that give Paved a GitHub App registered for it (see `paved setup`), by the names
    `Settings.from_env` reads. The private key's line breaks are written `\\n`, which it reads back."""
    values = {
        "PAVED_GITHUB_API_URL": api_url,
        "PAVED_GITHUB_APP_ID": str(app_id),
        "PAVED_GITHUB_PRIVATE_KEY": private_key.strip().replace("\r\n", "\n").replace("\n", "\\n"),
        "PAVED_WEBHOOK_SECRET": webhook_secret,
        "PAVED_GITHUB_CLIENT_ID": client_id,
        "PAVED_GITHUB_CLIENT_SECRET": client_secret,
        "PAVED_SESSION_SECRET": session_secret,
        "PAVED_PUBLIC_URL": public_url,
        "PAVED_CATALOGUE_REPO": catalogue_repo,
    }
    return {name: value for name, value in values.items() if value}


def write_env_file(path: Path, values: Mapping[str, str], *, comments: tuple[str, ...] = (),
                   overwrite: bool = False) -> None:
    """Write `values` as an env file at `path`, readable by its owner only (0600), all at once: the file
    appears whole or not at all, whenever the process dies. An existing file is replaced only if `overwrite`.

    Raises `ConfigurationError` when `path` exists (and not `overwrite`) or cannot be written.
    """
    for name, value in values.items():
        if not _ENV_NAME.fullmatch(name) or "\n" in value or "\r" in value or value != value.strip():
            raise ValueError(f"{name} cannot be written on one line of an env file")
    text = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    text += "".join(f"{name}={value}\n" for name, value in values.items())
    if path.exists() and not overwrite:
        raise ConfigurationError(f"{path} exists already", hint="Give another --output, or --force to replace it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written in full under a private name in the same folder, then put in place in one step: a link
        # that fails if the name is taken meanwhile, or a rename over the old file when asked to replace it.
        descriptor, scratch = _private_file(path)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(scratch, path)
            else:
                os.link(scratch, path)
        finally:
            if os.path.lexists(scratch):
                os.unlink(scratch)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists already",
                                 hint="Give another --output, or --force to replace it.") from None
    except OSError as exc:
        raise ConfigurationError(f"{path} cannot be written: {exc.strerror or type(exc).__name__}") from None


def _private_file(path: Path) -> tuple[int, str]:
    """A new file beside `path` that only its owner may read or write: its descriptor and name."""
    scratch = str(path.parent / f".{path.name}.{os.urandom(8).hex()}.tmp")
    return os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), scratch
