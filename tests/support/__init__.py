"""Helpers that start real services or build test data for the tests."""
