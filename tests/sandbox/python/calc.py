"""Fixture: a tiny module under test."""


def add(a, b):
    return a + b
