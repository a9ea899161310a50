"""Paved's build: the packages under bot/, and the starter rules as the package data of `bot.starter.data`.

This repository is itself a platform repo, so its schemas/, templates/, catalog/, the example change under
examples/ and the workflows under .github/ stay where a platform repo keeps them. A wheel must carry them,
or an installed Paved has nothing to run `paved demo` or `paved init` with. The package `bot.starter.data`
is mapped onto the repository's root, and pyproject.toml's [tool.setuptools.package-data] picks the files
of it that ship: the wheel holds them at the same paths under bot/starter/data/, and nothing is copied by
a build step or kept twice in git. pyproject.toml can either find packages or list them, not add one mapped
package to those it finds, hence this file. An editable install (`pip install -e .`, as `make` does) reads
the same files where they are: see `bot.starter.root`.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

STARTER = "bot.starter.data"


class BuildPackages(build_py):
    """Builds the packages as setuptools does, except that the starter's package has no modules: its folder
    is the repository's root, whose Python files (this one) are not part of Paved."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        return [] if package == STARTER else super().find_package_modules(package, package_dir)


setup(
    packages=[*find_packages(include=["bot", "bot.*"]), STARTER],
    package_dir={STARTER: "."},
    cmdclass={"build_py": BuildPackages},
)
