"""Multi-slice meshes: the replica axis is outermost and, on devices that report slices,
each replica is one whole slice (checked on stand-in device objects); sizes that do not fit
fail with one line naming them. (Loss and gradients: tests/test_parallel.py.)"""

from dataclasses import dataclass

import pytest

from scaling import sharding
from scaling.cli import main
from scaling.config import ConfigError, MeshConfig


@dataclass(frozen=True)
class FakeDevice:
    """What create_hybrid_device_mesh reads of a device."""

    id: int
    slice_index: int
    process_index: int = 0
    platform: str = "cpu"
    device_kind: str = "cpu"


DEVICES = [FakeDevice(i, i // 8) for i in range(16)]  # two slices of eight


def test_replica_axis_is_one_slice_each():
    assert sharding.slice_count(DEVICES) == 2
    grid = sharding.hybrid_devices((2, 1, 4, 2), DEVICES, 2)  # [replica, data, fsdp, tensor]
    assert grid.shape == (2, 1, 4, 2)
    for r in range(2):
        assert {d.slice_index for d in grid[r].flat} == {r}
    assert sorted(d.id for d in grid.flat) == list(range(16))


def test_replica_must_match_the_slices():
    with pytest.raises(ConfigError, match="mesh.replica=2"):
        sharding.hybrid_devices((1, 2, 4, 2), DEVICES, 2)


def test_mesh_shape_resolves_per_replica():
    assert sharding.mesh_shape(MeshConfig(1, -1, 2, replica=2), 16) == (2, 1, 4, 2)
    with pytest.raises(ConfigError, match="replica=3"):
        sharding.mesh_shape(MeshConfig(1, -1, 1, replica=3), 8)


def test_batch_is_split_over_replica_data_fsdp():
    import jax

    mesh = sharding.make_mesh(MeshConfig(1, 2, 2, replica=2))
    assert mesh.axis_names == ("replica", "data", "fsdp", "tensor")
    assert sharding.batch_ways(mesh) == 4
    assert sharding.batch_sharding(mesh).spec[0] == ("replica", "data", "fsdp")
    assert len(mesh.devices.flat) == len(jax.devices())


@pytest.mark.parametrize("args,needle", [
    (["--set", "mesh.replica=0"], "mesh.replica=0: must be a positive integer"),
    (["--slices", "2"], "--slices 2: give a positive count, with --topology"),
])
def test_bad_replica_or_slices_exit_2(args, needle, capsys):
    assert main(["bench", "compile", "--config", "gpt-tiny", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
