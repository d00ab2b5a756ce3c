"""kubectl and flux against this environment's cluster, and no other.

The bootstrap never uses the operator's current kube context: it writes a kubeconfig for the
cluster into the run's private directory (``eksctl utils write-kubeconfig``) and points KUBECONFIG
at it for every kubectl and flux command.
"""

from __future__ import annotations

from collections.abc import Sequence

from misp_eks.provision.context import Context
from misp_eks.provision.tools import EKSCTL, FLUX, KUBECTL


def environment(ctx: Context) -> dict[str, str]:
    def write() -> dict[str, str]:
        path = ctx.workdir / "kubeconfig"
        ctx.tools.run(
            EKSCTL,
            [
                "utils",
                "write-kubeconfig",
                "--cluster",
                ctx.names.cluster,
                "--region",
                ctx.names.region,
                "--kubeconfig",
                str(path),
            ],
            timeout=ctx.timing.tool,
        )
        return {"KUBECONFIG": str(path)}

    return ctx.fact("kubeconfig", write)


def kubectl(ctx: Context, args: Sequence[str], *, stdin: str | None = None, timeout: float | None = None) -> str:
    return ctx.tools.run(KUBECTL, list(args), stdin=stdin, env=environment(ctx), timeout=timeout or ctx.timing.tool)


def flux(ctx: Context, args: Sequence[str], *, timeout: float | None = None, interactive: bool = False) -> str:
    return ctx.tools.run(
        FLUX,
        list(args),
        env=environment(ctx),
        timeout=timeout or ctx.timing.flux,
        stream=True,
        interactive=interactive,
        what=f"flux {' '.join(args[:2])}",
    )
