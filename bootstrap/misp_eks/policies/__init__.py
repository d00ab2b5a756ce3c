"""Project policies: what this repository promises about every environment, checked on the built trees."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from misp_eks.problems import Problem
from misp_eks.validate.runner import Report

Policy = Callable[[Report], Iterable[Problem]]

ALL_POLICIES: tuple[Policy, ...] = ()
