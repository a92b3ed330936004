"""MinAtar envs (envs/minatar.py): registration, spaces, parity with MinAtar's own gym env, seeding,
exact snapshots, and the continual env's switching, padding and shared action set."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minatar import Environment

from envs import make_vector, supports_state
from envs.minatar import CONTINUAL_ID, GAMES, NUM_ACTIONS, env_id
from loop.config import ConfigError, compose, validate
from replay import make_replay

CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}
SEQUENCE = ["breakout", "seaquest", "freeway"]


def env_config(*overrides: str) -> dict:
    return compose("experiment=minatar_dqn", *overrides)["env"]


def rollout(env, actions):
    """Per vector step: obs, rewards, terminations, truncations, and game_index where the env has it."""
    steps = []
    for action in actions:
        obs, rewards, terminations, truncations, infos = env.step(action)
        steps.append((obs, rewards, terminations, truncations, infos.get("game_index", np.zeros(0))))
    return steps


def assert_same_rollouts(a, b):
    for t, (step_a, step_b) in enumerate(zip(a, b, strict=True)):
        for name, x, y in zip(("obs", "rewards", "terminations", "truncations", "game_index"), step_a, step_b,
                              strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{name} differs at step {t}"


@pytest.mark.parametrize("game", GAMES)
def test_registered_games_pass_gymnasiums_checker_with_minatars_spaces(game):
    env = gym.make(env_id(game))
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 1, (CHANNELS[game], 10, 10), np.uint8)
    assert env.action_space == gym.spaces.Discrete(len(Environment(game).minimal_action_set()))
    assert gym.make(env_id(game), full_action_set=True).action_space == gym.spaces.Discrete(NUM_ACTIONS)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 1} and obs.any()


def test_minatar_options_reach_the_game():
    game = gym.make(env_id("seaquest"), sticky_action_prob=0.25, difficulty_ramping=False).unwrapped.game
    assert (game.sticky_action_prob, game.env.ramping) == (0.25, False)
    game = gym.make(env_id("seaquest")).unwrapped.game
    assert (game.sticky_action_prob, game.env.ramping) == (0.1, True)  # MinAtar's defaults


@pytest.mark.parametrize("full_action_set", [False, True])
@pytest.mark.parametrize("game", ["breakout", "space_invaders"])
def test_same_trajectory_as_minatars_own_gym_env(game, full_action_set):
    """Parity with minatar.gym (its v1 ids use the minimal set, v0 all 6 actions): same seed, same actions,
    same states (transposed), rewards and terminations, sticky actions included."""
    from minatar.gym import register_envs

    if "MinAtar/Breakout-v0" not in gym.registry:
        register_envs()
    theirs = gym.make(f"MinAtar/{game.title().replace('_', '')}-v{0 if full_action_set else 1}", sticky_action_prob=0.3)
    ours = gym.make(env_id(game), full_action_set=full_action_set, sticky_action_prob=0.3)
    assert ours.action_space == theirs.action_space
    their_obs, _ = theirs.reset(seed=3)
    our_obs, _ = ours.reset(seed=3)
    actions = np.random.default_rng(0).integers(0, ours.action_space.n, 400)
    episodes = 0
    for action in actions:
        np.testing.assert_array_equal(our_obs, their_obs.transpose(2, 0, 1))
        our_obs, our_reward, our_end, _, _ = ours.step(action)
        their_obs, their_reward, their_end, _, _ = theirs.step(action)
        assert (our_reward, our_end) == (their_reward, their_end)
        if our_end:
            episodes += 1
            our_obs, _ = ours.reset()
            their_obs, _ = theirs.reset()
    assert episodes >= 2


def test_seeded_resets_reproduce_trajectories_and_seeds_differ():
    def play(seed):
        env = gym.make(env_id("asterix"))
        obs, _ = env.reset(seed=seed)
        trajectory = [obs]
        for action in np.random.default_rng(0).integers(0, env.action_space.n, 200):
            obs, reward, terminated, _, _ = env.step(action)
            trajectory.append(obs)
            if terminated:
                trajectory.append(env.reset()[0])
        return np.stack(trajectory)

    np.testing.assert_array_equal(play(5), play(5))
    assert not np.array_equal(play(5), play(6))


@pytest.mark.parametrize("overrides", [
    pytest.param(("env.game=seaquest", "env.kwargs.sticky_action_prob=0.5"), id="seaquest-sticky"),
    pytest.param(("env=minatar_continual", f"env.games=[{','.join(SEQUENCE)}]", "env.switch_env_steps=80",
                  "env.kwargs.sticky_action_prob=0.5"), id="continual-across-switches"),
])
def test_snapshot_then_restore_replays_bit_exactly_also_in_a_fresh_env(overrides):
    cfg = env_config("env.num_envs=2", *overrides)
    env = make_vector(cfg, num_envs=2)
    assert supports_state(env)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    rollout(env, rng.integers(0, env.single_action_space.n, (25, 2)))  # mid-episode, mid-turn
    blobs = env.get_attr("state_blob")
    actions = rng.integers(0, env.single_action_space.n, (150, 2))
    reference = rollout(env, actions)
    assert sum(step[2].sum() + step[3].sum() for step in reference) >= 2  # episodes ended after the snapshot

    env.set_attr("state_blob", list(blobs))
    assert_same_rollouts(reference, rollout(env, actions))
    fresh = make_vector(cfg, num_envs=2)
    fresh.reset(seed=123)  # a different history: everything must come from the blobs
    fresh.set_attr("state_blob", list(blobs))
    assert_same_rollouts(reference, rollout(fresh, actions))


def test_continual_switches_on_the_global_env_step_for_any_number_of_envs():
    switch_env_steps = 60
    for num_envs in (1, 2, 4):
        cfg = env_config("env=minatar_continual", f"env.games=[{','.join(SEQUENCE)}]",
                         f"env.switch_env_steps={switch_env_steps}", f"env.num_envs={num_envs}")
        env = make_vector(cfg, num_envs=num_envs)
        _, infos = env.reset(seed=0)
        assert list(infos["game_index"]) == [0] * num_envs
        env_steps, turns = 0, []
        while env_steps < 4 * switch_env_steps:
            # noop: breakout ends quickly by itself, the others run on, so both kinds of ending occur
            _, _, terminations, truncations, infos = env.step(np.zeros(num_envs, np.int64))
            env_steps += num_envs
            switched = env_steps % switch_env_steps == 0
            # every env ends its episode at a switch; truncation never happens elsewhere (no time limit)
            assert (truncations | terminations).all() if switched else not truncations.any(), env_steps
            game_of_this_step = infos["final_info"]["game_index"] if switched else infos["game_index"]
            assert list(game_of_this_step) == [(env_steps - 1) // switch_env_steps % len(SEQUENCE)] * num_envs
            if switched:
                turns.append(int(infos["game_index"][0]))
                assert list(infos["game"]) == [SEQUENCE[turns[-1]]] * num_envs
        assert turns == [1, 2, 0, 1]  # ... and after the last game the sequence starts again
        assert env.get_attr("game_index") == (1,) * num_envs  # the attribute, for the loop


def test_continual_pads_channels_and_shares_minatars_full_action_set():
    env = gym.make(CONTINUAL_ID, games=["breakout", "freeway"], switch_steps=10)
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 1, (7, 10, 10), np.uint8)  # freeway's 7 channels
    assert env.action_space == gym.spaces.Discrete(NUM_ACTIONS)
    obs, info = env.reset(seed=0)
    assert info == {"game_index": 0, "game": "breakout"}
    assert obs[:4].any() and not obs[4:].any()  # breakout's 4 channels, then zeros
    direct = gym.make(env_id("breakout"), full_action_set=True)
    direct_obs, _ = direct.reset(seed=int(np.random.SeedSequence([0, 0]).generate_state(1)[0]))
    np.testing.assert_array_equal(obs[:4], direct_obs)
    # action 3 is MinAtar's `right` in every game (the minimal set would have made it invalid in breakout)
    for _ in range(3):
        obs, *_ = env.step(3)
        direct_obs, *_ = direct.step(3)
        np.testing.assert_array_equal(obs[:4], direct_obs)
    obs, info = env.reset(options={"game_index": 1})
    assert info == {"game_index": 1, "game": "freeway"} and obs[:7].any()


def test_replay_auto_stores_minatar_maps_uniformly_not_as_frame_stacks():
    env = gym.make(env_id("seaquest"))
    replay = make_replay({"kind": "auto", "capacity": 10}, env.observation_space, env.action_space, num_envs=1,
                         gamma=0.99, device="cpu", seed=0)
    assert type(replay).__name__ == "UniformReplay"


@pytest.mark.parametrize(("overrides", "message"), [
    (("env.game=pong",), "env.game='pong' is unknown; allowed: asterix, breakout"),
    (("env.action_repeat=4",), "env.action_repeat=4; allowed for MinAtar: 1"),
    (("env.kwargs.sticky_action_prob=1.5",), "env.kwargs.sticky_action_prob=1.5 must be a probability"),
    (("env=minatar_continual", "env.games=[breakout,pong]"), "env.games=['breakout', 'pong'] must be"),
    (("env=minatar_continual", "env.games=[]"), "env.games=[] must be a non-empty list"),
    (("env=minatar_continual", "env.switch_env_steps=0"), "env.switch_env_steps=0 must be an integer >= 1"),
    (("env=minatar_continual", "env.switch_env_steps=1001", "env.num_envs=2"),
     "env.switch_env_steps=1001 must be a multiple of env.num_envs=2"),
    (("env=minatar_continual", "env.switch_env_steps=1000", "env.eval_num_envs=3"),
     "env.switch_env_steps=1000 must be a multiple of env.eval_num_envs=3"),
])
def test_bad_minatar_config_is_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as error:
        validate(compose("experiment=minatar_dqn", *overrides))
    assert "\n" not in str(error.value)


def test_rgb_rendering_for_videos():
    env = gym.make(env_id("breakout"), render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8 and frame.any()
