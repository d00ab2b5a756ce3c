"""Every project policy holds for the repository as committed."""

from __future__ import annotations

import pytest

from misp_eks.policies import ALL_POLICIES


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: f"{p.__module__.rsplit('.', 1)[-1]}.{p.__name__}")
def test_policy_holds(base_report, policy):
    problems = list(policy(base_report))
    assert not problems, "\n".join(map(str, problems))
