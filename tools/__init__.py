"""Checks and helpers for working on the project; not part of the installed package."""
