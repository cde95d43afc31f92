"""Two processes on localhost (jax.distributed, 4 CPU devices each) assemble the same global
batches as one process with 8 devices."""

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("mp_batches.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("mp_corpus")
    for i in range(12):
        (root / f"d{i}.txt").write_text(f"document {i}\n" + "abc def\n" * (20 + 7 * i))
    return root


def run(nproc: int, corpus, out) -> None:
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, str(WORKER), port, str(nproc), str(pid),
                               str(corpus), str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for pid in range(nproc)]
    for p in procs:
        try:
            output, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("multi-process batch assembly hung")
        assert p.returncode == 0, output[-3000:]


@pytest.mark.multiprocess
def test_two_processes_assemble_the_single_process_batches(corpus, tmp_path):
    run(1, corpus, tmp_path / "one.npz")
    run(2, corpus, tmp_path / "two.npz")
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files) and len(one.files) == 15
    for key in one.files:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    assert one["0/inputs"].shape == (16, 32)
    assert not np.array_equal(one["0/inputs"], one["1/inputs"])  # steps differ
