"""Compose the project's Hydra config in tests, exactly as train.py would see it."""

from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def compose(*overrides: str) -> dict[str, Any]:
    """The resolved config for `python train.py <overrides>` as a plain dict."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)
