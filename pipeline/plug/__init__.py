"""Plug: its webhook wire shapes and its API."""
