"""Atari vector env: preprocessing, SAME_STEP final_obs, episodic life, sticky actions, configs, HNS."""

import re
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.atari import GAMES, REFERENCE_SCORES, human_normalized_score, make_atari_vector

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def random_actions(env, rng):
    return rng.integers(0, env.single_action_space.n, env.num_envs)


def test_observations_are_84x84_uint8_stacks_and_rewards_raw():
    env = make_atari_vector("asterix", 2, 0, noop_max=0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert env.single_action_space.n == 9  # Asterix's minimal action set
    np.testing.assert_array_equal(obs[:, :3], 0)  # ALE pads a new game's stack with zero frames
    rng = np.random.default_rng(0)
    rewards = [env.step(random_actions(env, rng))[1] for _ in range(150)]
    assert np.max(rewards) >= 50  # Asterix items score 50+: not clipped to 1
    assert make_atari_vector("asterix", 1, 0, full_action_space=True).single_action_space.n == 18


def test_same_step_final_obs_is_the_true_last_stack():
    env = make_atari_vector("pong", 3, 0, noop_max=8, max_episode_frames=100)  # 25-step games
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    ends_seen = 0
    for _ in range(60):
        previous = obs
        obs, _, terminations, truncations, info = env.step(random_actions(env, rng))
        ended = terminations | truncations
        np.testing.assert_array_equal(info["_final_obs"], ended)
        np.testing.assert_array_equal(info["game_over"], ended)  # no episodic life: the same thing
        for e in range(3):
            successor = info["final_obs"][e] if ended[e] else obs[e]
            np.testing.assert_array_equal(successor[:3], previous[e, 1:])  # the stack shifted by one frame
            if ended[e]:
                ends_seen += 1
                np.testing.assert_array_equal(obs[e, :3], 0)  # the reset observation starts a new stack
                assert obs[e, 3].any()
    assert ends_seen >= 3


def test_episodic_life_terminates_on_life_loss_but_game_continues():
    env = make_atari_vector("breakout", 2, 0, episodic_life=True, fire_reset=True, noop_max=0)
    obs, info = env.reset(seed=0)
    lives = info["lives"].copy()
    rng = np.random.default_rng(0)
    life_losses = 0
    for _ in range(150):
        obs, _, terminations, _, info = env.step(random_actions(env, rng))
        lost = terminations & ~info["game_over"]
        life_losses += lost.sum()
        assert (info["lives"][lost] == lives[lost] - 1).all()  # same game, one life fewer
        np.testing.assert_array_equal(obs[lost, :3], 0)  # the next life starts a fresh stack
        lives = info["lives"].copy()
    assert life_losses >= 2


def test_agent_step_sticky_actions_repeat_the_previous_agent_action():
    # With p -> 1 every agent step repeats the game-start NOOP, whatever the agent asks for.
    sticky = make_atari_vector(
        "breakout", 1, 0, noop_max=0, repeat_action_probability=0.999999, sticky_actions_at="agent_step"
    )
    plain = make_atari_vector("breakout", 1, 0, noop_max=0, repeat_action_probability=0.0)
    sticky.reset(seed=3)
    plain.reset(seed=3)
    for _ in range(40):
        a = sticky.step(np.array([1]))[0]  # FIRE, ignored
        b = plain.step(np.array([0]))[0]
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="game="):
        make_atari_vector("Breakout", 1, 0)
    with pytest.raises(ValueError, match="sticky_actions_at"):
        make_atari_vector("breakout", 1, 0, sticky_actions_at="episode")


@pytest.mark.parametrize("preset", ["atari", "atari_machado", "atari_fire_paper"])
def test_config_presets_compose_and_build(preset):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(config_name=f"env/{preset}", overrides=["env.game=ms_pacman"]).env
    assert (cfg.id, cfg.suite) == ("ms_pacman", "atari")
    env = make_atari_vector(cfg.id, 1, 0, max_episode_steps=cfg.max_episode_steps, **cfg.kwargs)
    assert env.reset(seed=0)[0].shape == (1, 4, 84, 84)


def test_fire_paper_preset_matches_the_paper_wrappers():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose(config_name="env/atari_fire_paper").env
    kw = cfg.kwargs
    assert (kw.noop_max, kw.episodic_life, kw.fire_reset, kw.full_action_space) == (0, False, False, False)
    assert (kw.repeat_action_probability, kw.sticky_actions_at) == (0.25, "agent_step")
    assert kw.frame_stack_start == "repeat"  # gymnasium's FrameStack repeats an episode's first frame
    assert cfg.max_episode_steps == 100_000 and kw.frame_skip == 4 and cfg.action_repeat == 1


def test_reference_scores_cover_the_57_games():
    assert len(GAMES) == 57 and "ms_pacman" in GAMES and "defender" in GAMES and "surround" in GAMES
    assert all(human > random for random, human in REFERENCE_SCORES.values())
    with pytest.raises(ValueError, match="game="):
        human_normalized_score("pacman", 1.0)


def test_human_normalized_score_for_the_paper_games():
    assert human_normalized_score("asterix", 210.0) == 0.0
    assert human_normalized_score("beam_rider", 16926.5) == pytest.approx(1.0)
    # FIRE at 2.5M (spec §5.1): Asterix 2250 -> 0.25, BeamRider 3400 -> 0.18, DemonAttack 1500 -> 0.74
    assert human_normalized_score("asterix", 2250) == pytest.approx((2250 - 210.0) / 8293.3)
    assert round(human_normalized_score("beam_rider", 3400), 2) == 0.18
    assert round(human_normalized_score("demon_attack", 1500), 2) == 0.74


def test_reference_scores_match_the_spec_table(shared_dir):
    table = (shared_dir / "specs" / "fire.md").read_text()
    names = {"Asterix": "asterix", "BeamRider": "beam_rider", "DemonAttack": "demon_attack"}
    rows = re.findall(r"^\s*\| (Asterix|BeamRider|DemonAttack) \| ([\d.]+) \| ([\d.]+) \|\s*$", table, re.M)
    assert len(rows) == 3
    for name, random, human in rows:
        assert REFERENCE_SCORES[names[name]] == (float(random), float(human))


def test_the_vector_env_declares_its_game_normalisation():
    from envs import normalized_score

    envs = make_atari_vector("asterix", 1)
    assert normalized_score(envs.metadata, 2250.0) == human_normalized_score("asterix", 2250.0)
    envs.close()
