"""Record this workflow's deployment on GitHub, so the service's deployment status shows in Paved's catalogue.

    python3 .github/record-deployment.py start ENVIRONMENT   # prints id=N, for $GITHUB_OUTPUT
    python3 .github/record-deployment.py finish ID JOB_STATUS  # success, failure or cancelled

`start` creates a deployment of this run's commit to ENVIRONMENT and marks it in progress; `finish` gives
it the job's outcome. Both link the run's log. They read what GitHub Actions sets (GITHUB_API_URL,
GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_SERVER_URL, GITHUB_RUN_ID) and GITHUB_TOKEN, which needs
`deployments: write`. Only the standard library: the deploy job needs no Python set up.
"""

import json
import os
import sys
import urllib.request

# What GitHub calls a job's outcome, as a deployment status.
STATES = {"success": "success", "failure": "failure"}


def call(method, path, body):
    request = urllib.request.Request(
        f"{os.environ['GITHUB_API_URL']}/repos/{os.environ['GITHUB_REPOSITORY']}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {os.environ['GITHUB_TOKEN']}",
            "Accept": "application/vnd.github+json",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def log_url():
    server, repository = os.environ["GITHUB_SERVER_URL"], os.environ["GITHUB_REPOSITORY"]
    return f"{server}/{repository}/actions/runs/{os.environ['GITHUB_RUN_ID']}"


def start(environment):
    sha = os.environ["GITHUB_SHA"]
    deployment = call("POST", "/deployments", {
        "ref": sha,
        "environment": environment,
        "task": "deploy",
        "auto_merge": False,
        # The tests passed in this workflow already; other checks of the commit do not hold it back.
        "required_contexts": [],
        "description": f"Deployed by CI from {sha[:7]}",
    })
    call("POST", f"/deployments/{deployment['id']}/statuses", {"state": "in_progress", "log_url": log_url()})
    print(f"id={deployment['id']}")


def finish(deployment_id, job_status):
    state = STATES.get(job_status, "error")
    call("POST", f"/deployments/{int(deployment_id)}/statuses", {"state": state, "log_url": log_url()})


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"start": start, "finish": finish}[command](*arguments)
