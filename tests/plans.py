"""Sample plans built by hand, shared by the renderer tests.

Each reads like a pull request someone might open against the platform repository.
"""

from __future__ import annotations

from bot.model import Action, Change, FieldChange, Finding, Plan, RuleChange, Severity, TeamCost, Upgrade

BASE = "3f1c2a9d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b"
HEAD = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
REPO_URL = "https://github.com/acme/platform"


def finding(
    path: str = "catalog/orders.yaml",
    line: int = 12,
    column: int = 5,
    message: str = "`sise` is not a known key",
    *,
    severity: Severity = "error",
    rule: str = "schema",
    hint: str | None = None,
    pointer: str = "/spec/sise",
) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=column,
        pointer=pointer,
        message=message,
        severity=severity,
        rule=rule,
        hint=hint,
    )


def change(
    action: Action = "create",
    kind: str = "Service",
    name: str = "search",
    *,
    owner: str = "discovery",
    path: str | None = None,
    line: int = 1,
    fields: tuple[FieldChange, ...] = (),
    cost_before: float = 0.0,
    cost_after: float = 0.0,
    previous_name: str | None = None,
    previous_path: str | None = None,
) -> Change:
    return Change(
        action=action,
        kind=kind,
        name=name,
        owner=owner,
        path=path or f"catalog/{name}.yaml",
        line=line,
        fields=fields,
        previous_name=previous_name,
        previous_path=previous_path,
        monthly_cost_before=cost_before,
        monthly_cost_after=cost_after,
    )


def empty_plan(**overrides: object) -> Plan:
    """Nothing changes and nothing is wrong."""
    values: dict[str, object] = {
        "base": BASE,
        "head": HEAD,
        "changes": (),
        "deletions": (),
        "unchanged": 42,
        "costs": (),
        "findings": (),
        "files_checked": 14,
    }
    values.update(overrides)
    return Plan(**values)  # type: ignore[arg-type]


def typical_plan() -> Plan:
    """A team adds a search service with its database, grows the orders database, drops an access grant.

    It also misspells a key and goes over budget.
    """
    return Plan(
        base=BASE,
        head=HEAD,
        changes=(
            change("create", "Service", "search", owner="discovery", line=2),
            change(
                "create",
                "Database",
                "search-db",
                owner="discovery",
                path="catalog/search.yaml",
                line=24,
                cost_after=40.0,
            ),
            change(
                "update",
                "Database",
                "orders-db",
                owner="payments",
                path="catalog/orders.yaml",
                line=1,
                fields=(
                    FieldChange("/spec/size", "replace", "small", "medium"),
                    FieldChange("/spec/backups/retentionDays", "replace", 7, 14),
                ),
                cost_before=40.0,
                cost_after=120.0,
            ),
            change(
                "rename",
                "Service",
                "checkout-api",
                owner="payments",
                previous_name="payments-api",
                previous_path="catalog/payments-api.yaml",
            ),
        ),
        deletions=(change("delete", "Access", "data-reads-orders", owner="data", path="catalog/access.yaml", line=8),),
        unchanged=37,
        costs=(
            TeamCost("discovery", before=0.0, after=40.0, budget=300.0),
            TeamCost("payments", before=440.0, after=520.0, budget=500.0),
            TeamCost("data", before=60.0, after=60.0),
        ),
        findings=(
            finding(
                "catalog/search.yaml",
                30,
                5,
                "`sise` is not a known key in a Database request",
                hint="Did you mean `size`?",
                pointer="/spec/sise",
            ),
            finding(
                "catalog/search.yaml",
                0,
                0,
                "the file holds two requests named `search`",
                rule="catalog.unique-names",
            ),
            finding(
                "catalog/orders.yaml",
                9,
                22,
                "backups are kept for 14 days; production databases should keep 30",
                severity="warning",
                rule="db-backup-retention",
                hint="Set `spec.backups.retentionDays` to 30 or more.",
                pointer="/spec/backups/retentionDays",
            ),
        ),
        files_checked=14,
    )


def rules_change_plan() -> Plan:
    """Only the guardrails change: a policy is tightened and a template gains a file."""
    return empty_plan(
        rule_changes=(
            RuleChange("schemas/policies/db-backup-retention.json", "modified"),
            RuleChange("templates/fastapi-service/hooks/post_gen_project.py", "added"),
        ),
    )


def upgrade_plan() -> Plan:
    """A template changes: two services take the upgrade, one opted out; another changes its answers."""
    return empty_plan(
        rule_changes=(RuleChange("templates/fastapi-service/{{cookiecutter.name}}/Dockerfile", "modified"),),
        upgrades=(
            Upgrade("Service/billing", "fastapi-service", "answers"),
            Upgrade("Service/checkout", "fastapi-service", "template"),
            Upgrade("Service/legacy", "fastapi-service", "template", "manual"),
            Upgrade("Service/search", "fastapi-service", "template"),
        ),
    )


def huge_plan(changes: int = 5000, findings: int = 20000) -> Plan:
    """A bulk migration touching thousands of requests, with a finding on most lines."""
    return Plan(
        base=BASE,
        head=HEAD,
        changes=tuple(
            change(
                "update",
                "Service",
                f"service-{i:05d}",
                owner=f"team-{i % 40:02d}",
                fields=(FieldChange("/spec/lifecycle", "replace", "production", "deprecated"),),
                cost_before=10.0,
                cost_after=12.5,
            )
            for i in range(changes)
        ),
        deletions=(),
        unchanged=0,
        costs=tuple(TeamCost(f"team-{t:02d}", 1000.0, 1312.5, budget=1200.0) for t in range(40)),
        findings=tuple(
            finding(
                f"catalog/service-{i % changes:05d}.yaml",
                i // changes + 1,
                3,
                f"`lifecycle: deprecated` services must name a successor (finding {i})",
                severity="error" if i % 3 == 0 else "warning",
                rule="service-successor",
                hint="Add `spec.successor: Service/<name>`.",
            )
            for i in range(findings)
        ),
        files_checked=changes,
    )
