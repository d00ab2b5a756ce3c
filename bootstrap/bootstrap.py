#!/usr/bin/env python3
"""Stand up (or tear down) one MISP-on-EKS environment: ``python bootstrap/bootstrap.py --env prod``.

A thin entry point: the work is done by misp_eks.provision (this directory is on sys.path when the
script runs, so the package imports without installation).
"""

from misp_eks.provision.cli import run

if __name__ == "__main__":
    run()
