"""A running LocalCluster keeps its objects out of full collections until the last one stops."""

from __future__ import annotations

import gc

import pytest

from netfault.simulator.cluster.local import LocalCluster


async def test_objects_frozen_while_clusters_run_and_collectable_after_the_last_stops() -> None:
    gc.unfreeze()
    async with LocalCluster(2, seed=1) as outer:
        held = gc.get_freeze_count()
        assert held > 0
        async with LocalCluster(1, seed=2):
            assert gc.get_freeze_count() > held
        assert gc.get_freeze_count() > 0  # the outer cluster still runs
        assert outer.fakes
    assert gc.get_freeze_count() == 0


async def test_a_cluster_that_fails_to_start_holds_nothing() -> None:
    gc.unfreeze()
    with pytest.raises(ValueError, match="at most 250 nodes"):
        await LocalCluster(251).start()
    assert gc.get_freeze_count() == 0
