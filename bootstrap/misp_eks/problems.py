"""One shape for everything that goes wrong because of input: a file, an object, a field, a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """A finding about the repository or the operator's input, printed as one line."""

    where: str
    """Repository-relative file or tree (or a command) the problem was found in."""
    message: str
    obj: str = ""
    """The object, for example ``Deployment misp/misp-web``; empty for whole-file problems."""
    field: str = ""
    """Dotted path of the field, for example ``spec.template.spec.containers[0].image``."""

    def __str__(self) -> str:
        parts = [self.where]
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


class UserError(Exception):
    """Bad input or a missing tool: reported as one line with a non-zero exit and no traceback."""

    def __init__(self, problem: Problem, exit_code: int = 2) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.exit_code = exit_code


def field_path(parts: object) -> str:
    """Render a jsonschema or pydantic location (``['spec', 'containers', 0]``) as ``spec.containers[0]``."""
    out = ""
    for part in parts:  # type: ignore[attr-defined]
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
