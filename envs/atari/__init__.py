"""Atari 2600 games on ale-py (native vector env, or a snapshottable Python twin), DQN preprocessing, scores.

`make_atari_vector(game, num_envs, seed, backend=..., **protocol)` returns a gymnasium VectorEnv in
SAME_STEP autoreset mode: (num_envs, 4, 84, 84) uint8 grayscale stacks, frame skip 4 with a max-pool over
the last two frames, raw (unclipped) rewards, `info["final_obs"]`/`info["_final_obs"]` at episode ends and
`info["game_over"]` for logging whole games. Units: one env step of this env is one agent step
(= `frame_skip` frames); the configs set action_repeat: 1 so the loop's `env_steps` are agent steps, as in
the FIRE paper (2.5M agent steps = 10M frames).

Where ale-py's vector env cannot express a setting, and what we do instead:

* Sticky actions, FIRE paper (§4.3): the paper's StickyAction wrapper sits after the frame skip, so with
  p = 0.25 a whole agent step repeats the previous agent action. ALE applies stickiness per emulator frame.
  `sticky_actions_at: agent_step` turns ALE's off and draws the repeat in Python once per agent step
  (previous action = NOOP at each game start); `frame` (Machado et al. 2018's definition) uses ALE's.
* Episodic life: ale-py 0.12's `episodic_life=True` restarts the whole game at every life loss, so a
  logged "episode" would be one life. We keep ALE's off and detect life loss from `info["lives"]`: the step
  is `terminated`, the game continues, `info["game_over"]` stays False, and the following stack is started
  afresh (older frames zeroed, ALE's reset convention), as the DeepMind wrappers did by re-filling the
  frame stack at the life-loss reset.
* Frame-stack padding: after a reset ALE pads the stack with zero frames; gymnasium's FrameStack (used by
  the paper's CleanRL code) repeats the first frame. Not configurable in ale-py; we keep zeros, and the
  frame-efficient replay (replay/atari.py) rebuilds stacks with the same convention.
* Time limit: ALE counts emulator frames (`max_episode_frames`, 108k default). The paper's 100k-agent-step
  TimeLimit is exactly 400k frames at frame skip 4 (`max_episode_steps` converts for you).
* Reward clipping: ALE can clip inside the env; we never do (the loop logs raw scores, DQN clips).
* No-op starts and fire reset are ALE's own (`noop_max`, `fire_reset`).
* `final_obs` is a dense uint8 array (rows outside `_final_obs` repeat `obs`), not gymnasium's object array;
  `info["final_info"]` is not provided.
* Checkpointing: ALEVectorInterface exposes no clone/restore of emulator state, so the `vector` backend
  cannot be saved: `resume=` refuses its checkpoints, and `load_checkpoint=` starts new games from the
  saved weights and replay (what the paper's stage 2 does anyway).

Backends (`backend=` here, `env.kwargs.backend` in configs):

* `vector` (default): ale-py's C++ vector env, `num_threads` worker threads. Use it for speed.
* `gymnasium`: envs/atari/preprocessing.py redoes the C++ env's preprocessing in Python on ale-py's
  single-game env, inside gymnasium's Sync/AsyncVectorEnv (`env.vectorization`). For the same seed and
  actions it returns the same observations, rewards, terminations, truncations and infos bit for bit
  (tests/envs/test_atari_backends.py: no-op starts, FIRE resets, life losses, both sticky-action levels,
  time limits, the full action set), because it mirrors the C++ code: ALE seeded with the reset seed, the
  no-op count drawn as libstdc++ draws it from `std::mt19937(seed)`, OpenCV's INTER_AREA resize in float32,
  max-pool buffers that keep a previous step's frames when a game ends within the frame skip. Each game
  has `state_blob` (ALE `cloneState(include_rng=True)` plus the preprocessing buffers, ~110 KB), so the
  loop checkpoints the envs mid-episode and `resume=` continues a killed run exactly. The cost is CPU: all
  games step in one Python process (or one process each with async), where `vector` uses C++ threads;
  bench/atari_backends.py measured 0.5-0.7x the vector env's env steps/s on 2 busy cores (2.5-3.1k vs
  4.5-5.0k, 4 envs, random actions), small beside DQN's updates at replay ratio 1 on a CPU, noticeable
  on a fast GPU. A snapshot takes ~1 ms per 4 games.
  Mirroring means following ale-py 0.12's C++ env; an ale-py upgrade that changes it breaks the parity
  test, not silently the runs.
"""

from envs.atari.scores import GAMES, REFERENCE_SCORES, human_normalized_score
from envs.atari.vector import BACKENDS, AtariVectorEnv, make_atari_vector

__all__ = ["BACKENDS", "GAMES", "REFERENCE_SCORES", "AtariVectorEnv", "human_normalized_score", "make_atari_vector"]
