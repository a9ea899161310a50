"""The mirrors in Paved's data folder are a cache of the forge: damaged between jobs, the next job rebuilds
what it needs and succeeds, and `/readyz` says so when the mirrors' folder cannot be written."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.chaos.conftest import Chaos


def mirror(chaos: Chaos) -> Path:
    return chaos.data() / "mirrors" / "acme" / "platform.git"


@pytest.mark.parametrize("damaged", ["HEAD", "refs/heads/main", "refs/paved/applied"])
def test_a_mirror_file_truncated_between_jobs_is_fetched_again_and_the_merge_applies_once(
        chaos: Chaos, damaged: str, record_property: Callable[[str, object], None]) -> None:
    chaos.serve()
    number = chaos.planned_request()
    target = mirror(chaos) / damaged
    assert target.is_file(), sorted(str(p.relative_to(mirror(chaos))) for p in mirror(chaos).rglob("*"))
    target.write_bytes(b"")  # a crash or a full disk while git wrote it

    watch = chaos.converging(f"the merge applies through a mirror with {damaged} truncated")
    head = chaos.merge(number)
    chaos.wait_until_reported(number, head, seconds=30)
    watch.stop(record_property)
    chaos.assert_applied_once(number, head)


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """`folder` cannot be written into, as on a volume remounted read-only.

    Read-only permissions stop every user but root; for root, who writes through any permission, a file
    takes the folder's place for the while (creating a file inside it then fails for root as well).
    """
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    folder.write_text("not a folder\n")
    try:
        yield
    finally:
        folder.unlink()
        aside.rename(folder)


def test_readyz_answers_503_while_the_mirrors_folder_cannot_be_written_and_200_once_it_can(chaos: Chaos) -> None:
    chaos.serve()
    chaos.wait_until_applied(chaos.seed_head)
    mirrors = chaos.data() / "mirrors"
    assert chaos.readyz().status_code == 200

    with unwritable(mirrors):
        refused = chaos.readyz()
    assert refused.status_code == 503
    assert f"the mirrors folder {mirrors} cannot be written" in refused.json()["message"]
    assert chaos.readyz().status_code == 200

