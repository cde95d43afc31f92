"""Two processes on localhost (jax.distributed, 4 CPU devices each) assemble the same global
batches as one process with 8 devices, from a token store of many shards, each process
opening only the shards its own rows lie in."""

import json
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
    """A token store (byte tokenizer) of 12 documents in about 12 shards."""
    from scaling.cli import main

    root = tmp_path_factory.mktemp("mp_corpus")
    for i in range(12):
        (root / f"d{i:02d}.txt").write_text(f"document {i}\n" + "abc def\n" * (20 + 7 * i))
    store = root / "store"
    assert main(["prepare", "--config", "gpt-tiny", "--data", f"text:{root}/*.txt", "--out",
                 str(store), "--set", "data.tokenizer=byte", "--shard-mb", "0.0001",
                 "--quiet"]) == 0
    return store


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
    manifest = json.loads((corpus / "manifest.json").read_text())
    counts = [s["tokens"] for s in manifest["splits"]["train"]["shards"]]
    edges = np.cumsum([0, *counts])  # shard k holds stream tokens [edges[k], edges[k + 1])
    for pid in range(2):
        read = json.loads(Path(f"{tmp_path / 'two.npz'}.{pid}.json").read_text())
        assert len(read["rows"]) == 3 * 8  # 3 steps x 8 of the 16 rows
        touched = set()
        for r in read["rows"]:  # row r is tokens [32 r, 32 r + 33)
            first, last = 32 * r, 32 * r + 32
            touched |= set(range(np.searchsorted(edges, first, side="right") - 1,
                                 np.searchsorted(edges, last, side="right")))
        assert read["opened"] == sorted(touched)
        assert len(touched) < len(counts)  # not every shard: only this process's rows
