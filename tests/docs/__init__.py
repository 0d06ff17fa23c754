"""Tests that the documentation matches the code: names, examples and commands."""
