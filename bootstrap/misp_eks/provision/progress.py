"""What the operator sees while a run goes on: phases, steps and waits with elapsed times.

On a terminal a live rich display shows the running phase and every wait with a spinner and a
clock; otherwise (CI, logs, pipes) the same events are plain timestamped lines. Every outcome
(created, exists, deleted, kept, ...) is also kept for the summary table at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import IO, Protocol

from rich import box
from rich.console import Console, RenderableType
from rich.progress import Progress as RichProgressBar
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from misp_eks.provision.errors import format_duration

HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    phase: str
    kind: str
    name: str
    action: str
    """created, exists, updated, deleted, kept, skipped, started, warning."""
    detail: str = ""


class WaitTicker(Protocol):
    def update(self, status: str) -> None: ...


class Progress(Protocol):
    outcomes: list[Outcome]

    def phase(self, name: str) -> AbstractContextManager[None]: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def record(self, kind: str, name: str, action: str, detail: str = "") -> None: ...
    def waiting(self, what: str, status: str = "") -> AbstractContextManager[WaitTicker]: ...
    def show(self, renderable: RenderableType) -> None: ...
    def close(self) -> None: ...


def make_console(stream: IO[str] | None = None, *, terminal: bool | None = None) -> Console:
    # No emoji codes: ARNs such as arn:aws:secretsmanager:...:secret:... contain ":secret:".
    console = Console(file=stream, force_terminal=terminal, highlight=False, soft_wrap=False, emoji=False)
    if not console.is_terminal:
        console = Console(file=stream, force_terminal=False, no_color=True, highlight=False, width=200, emoji=False)
    return console


@dataclass
class _Base:
    console: Console
    outcomes: list[Outcome] = field(default_factory=list)
    _phase: str = ""
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def line(self, message: str) -> None:
        raise NotImplementedError

    def info(self, message: str) -> None:
        self.line(message)

    def warn(self, message: str) -> None:
        self.line(f"warning: {message}")

    def record(self, kind: str, name: str, action: str, detail: str = "") -> None:
        outcome = Outcome(self._phase, kind, name, action, detail)
        with self._lock:
            self.outcomes.append(outcome)
        suffix = f" ({detail})" if detail else ""
        self.line(f"{kind} {name}: {action}{suffix}")

    def show(self, renderable: RenderableType) -> None:
        with self._lock:
            self.console.print(renderable)

    def close(self) -> None:
        return None


@dataclass
class PlainProgress(_Base):
    """Timestamped lines, for logs and pipes."""

    def line(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        prefix = f"[{self._phase}] " if self._phase else ""
        with self._lock:
            self.console.print(f"{stamp} {prefix}{message}", markup=False)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._phase = name
        started = time.monotonic()
        self.line("started")
        try:
            yield
        finally:
            self.line(f"finished after {format_duration(time.monotonic() - started)}")
            self._phase = ""

    @contextmanager
    def waiting(self, what: str, status: str = "") -> Iterator[WaitTicker]:
        ticker = _PlainTicker(self, what, time.monotonic(), status=status, last_said=time.monotonic())
        self.line(f"waiting for {what}{': ' + status if status else ''}")
        yield ticker
        self.line(f"{what}: done after {format_duration(time.monotonic() - ticker.started)}")


@dataclass
class _PlainTicker:
    owner: PlainProgress
    what: str
    started: float
    status: str = ""
    last_said: float = 0.0

    def update(self, status: str) -> None:
        """Say the status when it changes, and at least once a minute."""
        now = time.monotonic()
        if status != self.status or now - self.last_said >= HEARTBEAT_SECONDS:
            elapsed = format_duration(now - self.started)
            self.owner.line(f"still waiting for {self.what} ({elapsed}){': ' + status if status else ''}")
            self.status, self.last_said = status, now


@dataclass
class LiveProgress(_Base):
    """A live rich display: the running phase and every wait, each with a spinner and elapsed time."""

    _bar: RichProgressBar | None = None

    def _started(self) -> RichProgressBar:
        """The live display, started on first use (so that plans and prompts come before it)."""
        with self._lock:
            if self._bar is None:
                self._bar = RichProgressBar(
                    SpinnerColumn(),
                    TextColumn("{task.description}"),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
                self._bar.start()
            return self._bar

    def line(self, message: str) -> None:
        prefix = f"[bold]{self._phase}[/bold] " if self._phase else ""
        with self._lock:
            self.console.print(f"{prefix}{_escape(message)}")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        bar = self._started()
        self._phase = name
        started = time.monotonic()
        task = bar.add_task(f"phase {name}", total=None)
        try:
            yield
        finally:
            bar.remove_task(task)
            self.line(f"[green]finished[/green] after {format_duration(time.monotonic() - started)}")
            self._phase = ""

    @contextmanager
    def waiting(self, what: str, status: str = "") -> Iterator[WaitTicker]:
        bar = self._started()
        task = bar.add_task(f"waiting for {_escape(what)}", total=None)
        ticker = _LiveTicker(bar, task, what, time.monotonic())
        ticker.update(status)
        try:
            yield ticker
        finally:
            bar.remove_task(task)
        self.line(f"{what}: done after {format_duration(time.monotonic() - ticker.started)}")

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


@dataclass
class _LiveTicker:
    bar: RichProgressBar
    task: TaskID
    what: str
    started: float

    def update(self, status: str) -> None:
        suffix = f" [dim]({_escape(status)})[/dim]" if status else ""
        self.bar.update(self.task, description=f"waiting for {_escape(self.what)}{suffix}")


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def make_progress(console: Console) -> Progress:
    return LiveProgress(console) if console.is_terminal else PlainProgress(console)


_ACTION_STYLE = {"created": "green", "updated": "yellow", "deleted": "red", "warning": "yellow"}


def summary_table(outcomes: list[Outcome], *, terminal: bool) -> Table:
    """What was created, what already existed, endpoints and where the secrets are."""
    table = Table(title="Summary", box=box.SIMPLE_HEAD if terminal else box.ASCII, show_lines=False)
    for column in ("phase", "resource", "name", "result", "details"):
        table.add_column(column, overflow="fold")
    for item in outcomes:
        style = _ACTION_STYLE.get(item.action, "")
        table.add_row(
            item.phase,
            item.kind,
            item.name,
            f"[{style}]{item.action}[/{style}]" if style else item.action,
            _escape(item.detail),
        )
    return table
