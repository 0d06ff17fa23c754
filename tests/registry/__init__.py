"""Tests of featurestore.registry."""
