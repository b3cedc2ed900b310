"""`need_installed(path, why)`: a test peer installed by .ci/setup-*.sh must be there under CI.

Outside CI a missing peer skips with the reason; under CI=true it fails, so a broken setup
script cannot turn the tests that depend on it into silent skips (as tests/test_completion.py
does for shells).
"""
import os

import pytest


def need_installed(path, why):
    """Return str(path) when it exists; else fail under CI=true, skip elsewhere, saying `why`."""
    if os.path.exists(str(path)):
        return str(path)
    if os.environ.get("CI") == "true":
        pytest.fail("%s (required under CI=true)" % why)
    pytest.skip(why)
