"""Evaluation videos: rendered MuJoCo episodes and Atari observation frames become real mp4 files."""

import imageio.v2 as imageio
import numpy as np

from loop.video import VideoRecorder, frames_per_second


class ZeroPolicy:
    def __init__(self, action):
        self.action = action

    def act(self, obs, *, env_steps, explore):
        return np.stack([self.action] * len(obs))


def read_video(path):
    reader = imageio.get_reader(path)
    frames = [frame for frame in reader]
    return frames, reader.get_meta_data()["fps"]


def test_mujoco_episode_is_rendered_offscreen(tmp_path):
    cfg = {"name": "hopper", "id": "Hopper-v5", "suite": "gymnasium", "num_envs": 1, "vectorization": "sync",
           "action_repeat": 2, "max_episode_steps": None, "kwargs": {"width": 64, "height": 48}}
    recorder = VideoRecorder(cfg, max_steps=15)
    path = tmp_path / "videos" / "eval.mp4"
    written = recorder.record(ZeroPolicy(np.zeros(3, np.float32)), env_steps=0, seed=0, path=path)
    recorder.close()
    frames, fps = read_video(path)
    assert written == len(frames) == 16  # the reset frame and 15 agent steps (Hopper stands that long)
    assert frames[0].shape == (48, 64, 3) and frames[0].std() > 5  # a scene, not a blank image
    assert fps == frames_per_second(cfg, {"render_fps": 125}) == 62.5  # Hopper-v5: 125 Hz, action repeat 2


def test_atari_video_shows_the_agents_frames(tmp_path):
    cfg = {"name": "pong", "game": "pong", "suite": "atari", "num_envs": 1, "action_repeat": 1,
           "max_episode_steps": None, "kwargs": {"noop_max": 0, "repeat_action_probability": 0.0}}
    recorder = VideoRecorder(cfg, max_steps=30)
    path = tmp_path / "pong.mp4"
    assert recorder.record(ZeroPolicy(0), env_steps=0, seed=0, path=path) == 31
    recorder.close()
    frames, fps = read_video(path)
    assert frames[-1].shape == (336, 336, 3) and fps == 15
    assert not path.with_name("pong.tmp.mp4").exists()


def test_classic_control_episode_is_rendered_with_the_video_extra_alone(tmp_path):
    # Pendulum draws through pygame, which the `video` extra installs (gymnasium's classic_control extra is gone).
    cfg = {"name": "pendulum", "id": "Pendulum-v1", "suite": "gymnasium", "num_envs": 1, "action_repeat": 1,
           "max_episode_steps": 10, "kwargs": {}}
    recorder = VideoRecorder(cfg, max_steps=50)
    path = tmp_path / "pendulum.mp4"
    assert recorder.record(ZeroPolicy(np.zeros(1, np.float32)), env_steps=0, seed=0, path=path) == 10
    recorder.close()
    frames, fps = read_video(path)
    assert len(frames) == 10 and fps == 30  # Pendulum-v1: render_fps 30
    assert frames[0].std() > 5
