"""The examples in fire's docstrings run as written (the README points readers at them)."""

import doctest

import pytest

import fire
import fire.options
import fire.registry


@pytest.mark.parametrize("module", [fire, fire.options, fire.registry], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
