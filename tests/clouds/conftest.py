"""Simulated cloudy scenes (120 × 140, day and night) with snow on the mountain, a bright warm desert and the lake."""
from __future__ import annotations

import pytest

from akkd_scale.simulate.clouds import add_clouds, add_snow, night_scene
from akkd_scale.simulate.scenes import demo_surfaces, make_demo_scene

SHAPE = (120, 140)
#: Landscape/atmosphere seed and cloud seed of the test scenes (not among the seeds the thresholds were set on).
SCENE_SEED, CLOUD_SEED = 11, 111
SNOWLINE_KM = 2.0


@pytest.fixture(scope="session")
def clear_scene():
    scene = make_demo_scene(SHAPE, seed=SCENE_SEED, surfaces=demo_surfaces((6.3,)))
    return add_snow(scene, SNOWLINE_KM, seed=SCENE_SEED)


@pytest.fixture(scope="session")
def day_scene(clear_scene):
    return add_clouds(clear_scene, seed=CLOUD_SEED, bright_desert=True)


@pytest.fixture(scope="session")
def night_cloudy_scene(clear_scene):
    night = add_snow(night_scene(clear_scene, seed=SCENE_SEED), SNOWLINE_KM, seed=SCENE_SEED, night=True)
    return add_clouds(night, seed=CLOUD_SEED, day=False)
