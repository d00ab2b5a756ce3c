"""The bootstrap: stands up one environment (cluster, Multi-AZ data layer, secrets, certificates, Flux).

``python bootstrap/bootstrap.py --env prod`` runs :func:`misp_eks.provision.cli.main`. Every step is
describe-or-create against AWS, so a re-run after an interruption resumes where the last one stopped
and a re-run on a converged environment changes nothing.
"""
