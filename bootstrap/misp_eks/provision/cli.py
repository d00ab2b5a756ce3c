"""``python bootstrap/bootstrap.py --env ENV``: plan, confirm, run the phases, summarise.

Exit codes: 0 done (or plan shown), 1 failure in AWS or a tool (or the operator said no),
2 bad input or a missing tool, 130 interrupted. Every failure is one line on stderr.

Test and debug aids (environment variables): ``MISP_EKS_RECORD_CALLS=<file>`` logs every AWS
operation as JSON lines; ``MISP_EKS_TIMING=fast`` shortens every timeout and poll (for emulators);
``MISP_EKS_RDS_TRUSTSTORE_URL`` and ``MISP_EKS_VERIFY_CONNECT_TO`` redirect the two HTTPS fetches;
``MISP_EKS_DEBUG=1`` prints the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from misp_eks.environment import availability_problems, load_environment
from misp_eks.paths import repository_root
from misp_eks.problems import UserError
from misp_eks.provision import destroy, phases, plan
from misp_eks.provision.aws.session import Aws, call_log_from_environment
from misp_eks.provision.context import Context
from misp_eks.provision.errors import (
    EXIT_FAILURE,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    RESUME_HINT,
    BootstrapError,
    InputError,
    describe_aws_error,
)
from misp_eks.provision.names import name_problems
from misp_eks.provision.progress import Progress, make_console, make_progress, summary_table
from misp_eks.provision.tools import Tools
from misp_eks.provision.waiting import Timing

TIMING_ENV = "MISP_EKS_TIMING"
DEBUG_ENV = "MISP_EKS_DEBUG"


def parser() -> argparse.ArgumentParser:
    names = [str(phase) for phase in phases.ORDER]
    cli = argparse.ArgumentParser(
        prog="bootstrap.py",
        description="Create (or --destroy) one MISP-on-EKS environment: cluster, Multi-AZ data layer, secrets, "
        "certificates and Flux. Idempotent: a re-run resumes where the last one stopped.",
        epilog=f"Phases, in order: {', '.join(names)}. "
        "--dry-run needs no AWS credentials (it never asks the instance metadata service for any).",
    )
    cli.add_argument("--env", required=True, help="environment: a folder under clusters/")
    cli.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cli.add_argument("--dry-run", action="store_true", help="show the plan and change nothing")
    selection = cli.add_mutually_exclusive_group()
    selection.add_argument("--only", choices=names, metavar="PHASE", help="run this phase alone")
    selection.add_argument("--until", choices=names, metavar="PHASE", help="run the phases up to this one")
    cli.add_argument("--destroy", action="store_true", help="tear the environment down (keeps data)")
    cli.add_argument("--delete-bucket", action="store_true", help="with --destroy: delete the attachments bucket too")
    cli.add_argument("--delete-secrets", action="store_true", help="with --destroy: delete the secrets and KMS key too")
    cli.add_argument("--plain", action="store_true", help="plain lines instead of the live display")
    cli.add_argument("--repository", type=Path, default=None, help=argparse.SUPPRESS)
    return cli


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    cli = parser()
    args = cli.parse_args(argv)
    if (args.delete_bucket or args.delete_secrets) and not args.destroy:
        cli.error("--delete-bucket and --delete-secrets go with --destroy")
    if args.destroy and (args.only or args.until or args.dry_run):
        cli.error("--destroy runs alone (no --only, --until or --dry-run)")
    return args


def _ask(question: str, expected: str | None, stdin: IO[str], stdout: IO[str]) -> bool:
    stdout.write(question)
    stdout.flush()
    answer = stdin.readline().strip()
    if expected is None:
        return answer.lower() in ("y", "yes")
    return answer == expected


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    services: dict[str, Any] | None = None,
    timing: Timing | None = None,
) -> int:
    environment = dict(os.environ if environ is None else environ)
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    args = _arguments(argv)
    calls = call_log_from_environment(environment)
    progress: Progress | None = None
    workdir = Path(tempfile.mkdtemp(prefix="misp-eks-"))
    try:
        env = load_environment(args.repository or repository_root(), args.env)
        problems = availability_problems(env) + name_problems(env)
        if problems:
            raise UserError(problems[0])
        console = make_console(stdout, terminal=False if args.plain else None)
        progress = make_progress(console)
        tools = Tools(environment, on_line=progress.info)
        aws = Aws(env.region, calls, instance_metadata=not args.dry_run)
        selected = phases.select(args.only, args.until)
        terminal = console.is_terminal
        if args.dry_run:
            rows = plan.build(env, aws, tools, selected)
            progress.show(
                plan.table(rows, title=f"Plan for {env.name} ({env.cluster_name}, {env.region})", terminal=terminal)
            )
            progress.info("dry run: nothing was changed")
            return 0
        if not aws.has_credentials():
            raise describe_aws_error(NoCredentialsError())
        if timing is None:
            timing = Timing.fast() if environment.get(TIMING_ENV) == "fast" else Timing()
        ctx = Context(
            env=env,
            aws=aws,
            tools=tools,
            progress=progress,
            environ=environment,
            timing=timing,
            cancel=threading.Event(),
            services=services or {},
            workdir=workdir,
        )
        if args.destroy:
            return _destroy(ctx, args, stdin, stdout, terminal)
        rows = plan.build(env, aws, tools, selected)
        progress.show(
            plan.table(rows, title=f"Plan for {env.name} ({env.cluster_name}, {env.region})", terminal=terminal)
        )
        if not args.yes and not _ask(
            f"Apply this plan to {env.cluster_name} in {env.region}? [y/N] ", None, stdin, stdout
        ):
            stderr.write("aborted: nothing was changed\n")
            return EXIT_FAILURE
        phases.run(ctx, selected, phases.RunOptions(assume_yes=args.yes))
        progress.close()  # the live display ends before the summary
        progress.show(summary_table(progress.outcomes, terminal=terminal))
        return 0
    except UserError as error:
        stderr.write(f"error: {error.problem}\n")
        return error.exit_code
    except BootstrapError as error:
        stderr.write(f"error: {error.message}\n")
        return error.exit_code
    except (BotoCoreError, ClientError) as error:
        stderr.write(f"error: {describe_aws_error(error, calls.last_context()).message}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        stderr.write(f"\ninterrupted: {RESUME_HINT}\n")
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug or an unforeseen answer: still one line, traceback on request
        if environment.get(DEBUG_ENV):
            traceback.print_exc(file=stderr)
        context = calls.last_context()
        during = f" (last AWS call: {context.action} {context.resource})" if context else ""
        stderr.write(
            f"error: unexpected {type(error).__name__}: {error}{during}; {RESUME_HINT} "
            f"(set {DEBUG_ENV}=1 for the traceback)\n"
        )
        return EXIT_FAILURE
    finally:
        if progress is not None:
            progress.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _destroy(ctx: Context, args: argparse.Namespace, stdin: IO[str], stdout: IO[str], terminal: bool) -> int:
    names = ctx.names
    if not args.yes:
        checks = [
            (
                f"Type the environment's name ({ctx.env.name}) to destroy {names.cluster} in {names.region}: ",
                ctx.env.name,
            )
        ]
        if args.delete_bucket:
            checks.append(
                (
                    f"Type the bucket's name to delete it with every object version ({names.attachments_bucket}): ",
                    names.attachments_bucket,
                )
            )
        if args.delete_secrets:
            checks.append(
                (
                    f"Type the secrets prefix to delete every secret of {names.cluster} ({names.secrets_prefix}): ",
                    names.secrets_prefix,
                )
            )
        for question, expected in checks:
            if not _ask(question, expected, stdin, stdout):
                raise InputError("aborted: the answer did not match; nothing was deleted")
    destroy.run(ctx, destroy.DestroyOptions(delete_bucket=args.delete_bucket, delete_secrets=args.delete_secrets))
    ctx.progress.close()
    ctx.progress.show(summary_table(ctx.progress.outcomes, terminal=terminal))
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["EXIT_FAILURE", "EXIT_INPUT", "main", "parser", "run"]
