"""When an episode ends and what its last observation was: the rules training, evaluation and videos share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def episode_ended(terminations: np.ndarray, truncations: np.ndarray, infos: Mapping[str, Any]) -> np.ndarray:
    """(num_envs,) bool: the scored episode ended at this step.

    Envs may end learning episodes earlier than scored ones (Atari with episodic life terminates at a lost
    life); such envs report the scored end as info["game_over"], and returns and lengths count whole games."""
    return infos.get("game_over", terminations | truncations)


def final_observations(next_obs: np.ndarray, infos: Mapping[str, Any]) -> np.ndarray:
    """Each transition's true successor. With SAME_STEP autoreset an ended env already returned its next
    episode's first observation; the last one of the ended episode is info["final_obs"]."""
    if "_final_obs" not in infos or not infos["_final_obs"].any():
        return next_obs
    successors = next_obs.copy()
    for i in np.flatnonzero(infos["_final_obs"]):
        successors[i] = infos["final_obs"][i]
    return successors
