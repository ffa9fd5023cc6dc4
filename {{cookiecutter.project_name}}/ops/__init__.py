"""Operational tools run from a workstation (not deployed)."""
