"""A build backend (PEP 517) that makes this package's wheel with Python's standard library alone.

Why not setuptools or hatchling: Paved's tests install this example with pip into a temporary folder,
and a build backend pip would have to download first would make them reach the internet. A package of
your own should use a common backend (see docs/writing-a-provider.md); what matters to Paved is only the
entry point in `[project.entry-points."paved.providers"]`, which this backend writes to
`entry_points.txt` as any backend does.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "py3-none-any"


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dist_name(project: dict) -> str:  # type: ignore[type-arg]
    return project["name"].replace("-", "_")


def _metadata(project: dict) -> str:  # type: ignore[type-arg]
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project['description']}", f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _entry_points(project: dict) -> str:  # type: ignore[type-arg]
    sections = []
    for group, points in project.get("entry-points", {}).items():
        sections.append(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items()))
    return "\n".join(sections)


def _dist_info_files(project: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {"METADATA": _metadata(project), "entry_points.txt": _entry_points(project),
            "WHEEL": f"Wheel-Version: 1.0\nGenerator: paved-queue stdlib_wheel\nRoot-Is-Purelib: true\nTag: {TAG}\n"}


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: object = None) -> str:
    project = _project()
    info = f"{_dist_name(project)}-{project['version']}.dist-info"
    folder = Path(metadata_directory) / info
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in _dist_info_files(project).items():
        (folder / name).write_text(text, encoding="utf-8")
    return info


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: str | None = None) -> str:
    project = _project()
    name = f"{_dist_name(project)}-{project['version']}"
    wheel = f"{name}-{TAG}.whl"
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "paved_queue").rglob("*.py")):
        files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for file, text in _dist_info_files(project).items():
        files[f"{name}.dist-info/{file}"] = text.encode("utf-8")
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}.dist-info/RECORD,,")
    files[f"{name}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode("utf-8")
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
