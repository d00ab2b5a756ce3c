"""Project policies: what this repository promises about every environment, checked on the built trees.

Each policy takes the validation report and yields problems; scripts/validate runs them all after the
generic checks, and the tests prove each catches its violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from misp_eks.policies import dashboard, misp, network, platform, secrets, workloads
from misp_eks.problems import Problem
from misp_eks.validate.runner import Report

Policy = Callable[[Report], Iterable[Problem]]

ALL_POLICIES: tuple[Policy, ...] = (
    *platform.POLICIES,
    *workloads.POLICIES,
    *network.POLICIES,
    *misp.POLICIES,
    *dashboard.POLICIES,
    *secrets.POLICIES,
)
