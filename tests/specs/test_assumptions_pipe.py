"""`loyalty-mock assumptions | head` ends quietly, as Unix tools do, when the reader closes the
pipe early (issue 16): no BrokenPipeError traceback."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipe sizing")
def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 4096)  # the writer blocks long before the end of the listing
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "assumptions"], stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    _, stderr = process.communicate(timeout=120)
    assert first.startswith(b"openapi/"), first
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr.decode()[-2000:]
    assert process.returncode == 141  # 128 + SIGPIPE, what `yes | head` reports for `yes`
