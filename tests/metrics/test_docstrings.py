"""The examples in the metrics' docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import embvar.metrics

MODULES = [
    info.name
    for info in pkgutil.iter_modules(embvar.metrics.__path__, "embvar.metrics.")
    if not info.name.rsplit(".", 1)[1].startswith("_")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.failed == 0


def test_public_names_are_exported():
    for name in embvar.metrics.__all__:
        assert hasattr(embvar.metrics, name), name
