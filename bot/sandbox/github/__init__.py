"""The sandbox's GitHub: everything that changes state, with GitHub's rules and webhooks.

REST handlers and the Python handle (`api.py`) both call `SandboxGitHub`'s methods, so a pull request
opened from a test story and one opened by PyGithub go through the same checks and fire the same
`pull_request opened` delivery. Each public method runs under the store lock as one atomic step;
permission checks name the acting `Principal` and fail with GitHub's status codes.

One module per resource area, named as GitHub's REST reference groups its operations, so a reader who
knows which part of GitHub a behaviour belongs to finds it by name: `repos.py`, `git.py` (refs,
commits and what a push sets off), `branches.py` (protection), `pulls.py`, `merge_queue.py`, `reviews.py`,
`checks.py`, `statuses.py`, `deployments.py` (with their statuses), `issues.py`, `comments.py` (with
reactions), `labels.py`, `orgs.py`, `teams.py`, `apps.py` (with installations), `actions.py` (secrets,
workflow runs), `environments.py`,
`custom_properties.py`, `webhooks.py`, `users.py`; `state.py` holds what they share.

Why mixins composed into one object rather than one service per area: on GitHub one change ripples
across areas inside one step (merging a pull request moves a ref, which fires `push`, synchronizes
other pull requests and requests check suites), and every area shares one store lock, one renderer and
one webhook dispatcher. Mixins keep that ripple a plain method call on one object and keep the flat
surface the endpoints and the Python handle call (`github.merge(...)`), while each area's code lives
where its name says. An area calls another's operations through `self.other_areas`, typed by
`state.OtherAreas`, which lists every such call; the composed `SandboxGitHub` is its own `other_areas`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..render import Urls
from .actions import ActionsArea
from .apps import AppsArea
from .branches import BranchesArea, PushRules
from .checks import ChecksArea
from .comments import CommentsArea
from .custom_properties import CustomPropertiesArea
from .deployments import DeploymentsArea
from .environments import EnvironmentsArea
from .git import GitDataArea
from .issues import IssuesArea
from .labels import LabelsArea
from .merge_queue import MergeQueueArea
from .orgs import OrgsArea
from .pulls import PullsArea
from .repos import ReposArea
from .reviews import ReviewsArea
from .state import ADMIN, READ_CODE, READ_META, WRITE_CODE, GitHubState, RefUpdate
from .statuses import StatusesArea
from .teams import TeamsArea
from .users import UsersArea
from .webhooks import WebhooksArea

__all__ = ["ADMIN", "READ_CODE", "READ_META", "WRITE_CODE", "PushRules", "RefUpdate", "SandboxGitHub"]


class SandboxGitHub(UsersArea, OrgsArea, TeamsArea, AppsArea, ReposArea, CustomPropertiesArea, GitDataArea,
                    BranchesArea, PullsArea, MergeQueueArea, ReviewsArea, IssuesArea, CommentsArea, LabelsArea,
                    ChecksArea, StatusesArea, DeploymentsArea, EnvironmentsArea, ActionsArea, WebhooksArea,
                    GitHubState):
    """The sandbox's in-memory GitHub: one state, every resource area's operations."""

    def __init__(self, data_dir: Path, urls: Urls, clock: Callable[[], float] = time.time) -> None:
        super().__init__(data_dir, urls, clock)
        self.other_areas = self
