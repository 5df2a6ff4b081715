"""Helpers for the reinforcement-learning lab (lab3_rl): environments, frames, reward plots, GIFs.

- `make_cartpole` / `make_pong`: seeded gymnasium environments (CartPole-v1, ALE/Pong-v5, whose
  ROMs ship inside ale-py, so nothing is downloaded);
- `dilate` and the Pong frame constants that the notebook's frame preprocessing uses;
- `smooth` and `RewardPlot`: the reward curve, redrawn in place while a cell trains;
- `render_cartpole`, `record_episode` and `gif`: watch an agent play, as an animated GIF.

Nothing here chooses actions, computes returns or losses, or trains: those are the lab's exercises.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from introdl.liveplot import LiveFigure

__all__ = [
    "CARTPOLE",
    "PONG",
    "PONG_BACKGROUND",
    "PONG_CROP_ROWS",
    "RewardPlot",
    "dilate",
    "gif",
    "make_cartpole",
    "make_pong",
    "record_episode",
    "render_cartpole",
    "smooth",
]

CARTPOLE = "CartPole-v1"
PONG = "ALE/Pong-v5"
# Rows of a Pong frame that hold the playing field (above: the score; below: the bottom wall).
PONG_CROP_ROWS = (35, 195)
# Red-channel values of Pong's two background colours.
PONG_BACKGROUND = (144, 109)


# --- environments --------------------------------------------------------------------------------


def make_cartpole(seed: int | None = None, *, max_episode_steps: int | None = None) -> Any:
    """A CartPole-v1 environment, seeded: its episodes are the same on every run with SEED.

    An episode ends when the pole tips past 12 degrees or the cart leaves the track, and is cut
    after 500 steps (or MAX_EPISODE_STEPS). The reward is +1 per step.
    """
    import gymnasium as gym

    env = gym.make(CARTPOLE, max_episode_steps=max_episode_steps)
    _seed(env, seed)
    return env


def make_pong(
    seed: int | None = None, *, frameskip: int = 5, max_episode_steps: int | None = None
) -> Any:
    """An Atari Pong environment (ALE/Pong-v5, RGB frames of shape (210, 160, 3)), seeded.

    Each step repeats the action for FRAMESKIP frames (5, as in the original lab). A game ends
    when one player has 21 points; MAX_EPISODE_STEPS cuts episodes short (for quick tests).
    """
    import gymnasium as gym

    _register_atari()
    env = gym.make(PONG, frameskip=frameskip, max_episode_steps=max_episode_steps)
    _seed(env, seed)
    return env


def _seed(env: Any, seed: int | None) -> None:
    """Seed the environment's and the action space's generators once.

    Later `env.reset()` calls without a seed continue from these generators, so a whole run of
    episodes is reproducible (seeding every reset would replay the same start every episode).
    """
    if seed is None:
        return
    env.reset(seed=seed)
    env.action_space.seed(seed)


def _register_atari() -> None:
    import ale_py
    import gymnasium as gym

    # The emulator prints a banner on stderr when it starts; nbgrader scores a graded cell that
    # wrote to stderr as 0, so keep it to errors only.
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    gym.register_envs(ale_py)


# --- frames --------------------------------------------------------------------------------------


def dilate(image: Any, size: int = 3) -> np.ndarray:
    """Grey-level dilation: each pixel becomes the maximum of the SIZE x SIZE square around it.

    Outside the image counts as 0. On a 0/1 image this thickens every bright object by
    SIZE // 2 pixels on each side (like OpenCV's `cv2.dilate` with a square of ones), so a
    one-pixel ball survives a later downsampling.
    """
    array = np.asarray(image)
    if array.ndim < 2:
        raise ValueError(f"dilate needs an image of at least 2 dimensions, got shape {array.shape}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"dilate needs an odd window size of at least 1, got {size}")
    r = size // 2
    pad = [(r, r), (r, r)] + [(0, 0)] * (array.ndim - 2)
    padded = np.pad(array, pad, constant_values=0)
    height, width = array.shape[:2]
    out = array.copy()
    for dy in range(size):
        for dx in range(size):
            np.maximum(out, padded[dy : dy + height, dx : dx + width], out=out)
    return out


# --- rewards -------------------------------------------------------------------------------------


def smooth(values: Sequence[float] | np.ndarray, window: int = 20) -> np.ndarray:
    """Trailing moving average: entry i is the mean of the last WINDOW values up to i.

    The first entries average what there is so far, so the curve starts at the first value.
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if array.size == 0:
        return array
    sums = np.cumsum(np.concatenate([[0.0], array]))
    index = np.arange(1, array.size + 1)
    start = np.maximum(index - window, 0)
    return np.asarray((sums[index] - sums[start]) / (index - start))


class RewardPlot(LiveFigure):
    """A reward curve (each episode and its moving average) redrawn in place while training.

        plot = RewardPlot(ylabel="reward per episode", target=195)
        for iteration in range(num_iterations):
            ...
            plot.update(rewards)
        plot.update(rewards, final=True)

    Redraws at most every EVERY seconds (a redraw costs ~50 ms), in one output area of the cell
    (an IPython display handle). Outside IPython, `update` does nothing.
    """

    def __init__(
        self,
        *,
        xlabel: str = "episode",
        ylabel: str = "reward",
        title: str = "training",
        window: int = 20,
        target: float | None = None,
        every: float = 2.0,
    ) -> None:
        super().__init__(every)
        self.xlabel, self.ylabel, self.title = xlabel, ylabel, title
        self.window = window  # episodes in the moving average
        self.target = target  # a dashed line, e.g. the reward that counts as solved

    def render(self, values: Sequence[float]) -> bytes:
        """The curve of VALUES as PNG bytes."""
        # A bare Figure, not pyplot: the inline backend would show a pyplot figure a second
        # time when the cell ends.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.subplots()
        x = np.arange(1, len(values) + 1)
        ax.plot(x, values, color="tab:blue", alpha=0.3, linewidth=1, label="each episode")
        title = self.title
        if len(values):
            smoothed = smooth(values, self.window)
            ax.plot(x, smoothed, color="tab:blue", linewidth=2, label=f"mean of {self.window}")
            title = f"{self.title}: {len(values)} episodes, mean of the last {self.window} {smoothed[-1]:.1f}"
        if self.target is not None:
            ax.axhline(self.target, color="tab:green", linestyle="--", linewidth=1, label="target")
        ax.set_title(title)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()


# --- watching an agent ---------------------------------------------------------------------------


def render_cartpole(observation: Any, width: int = 300, height: int = 180) -> np.ndarray:
    """A picture (height, width, 3) of CartPole in the state OBSERVATION.

    Drawn from the state itself (cart position and pole angle), because gymnasium's own renderer
    needs pygame. The track spans the cart positions -2.4 to 2.4 where an episode ends.
    """
    from PIL import Image, ImageDraw

    x, _, theta, _ = (float(v) for v in np.asarray(observation).reshape(-1)[:4])
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    scale = width / 6.0  # pixels per unit of cart position: the track (+-2.4) plus a margin
    track_y = int(height * 0.75)
    draw.line([(0, track_y), (width, track_y)], fill=(0, 0, 0), width=1)
    for edge in (-2.4, 2.4):
        ex = width / 2 + edge * scale
        draw.line([(ex, track_y - 6), (ex, track_y + 6)], fill=(200, 0, 0), width=2)
    cx = width / 2 + x * scale
    cart_w, cart_h = 0.5 * scale, 0.3 * scale
    draw.rectangle(
        [cx - cart_w / 2, track_y - cart_h / 2, cx + cart_w / 2, track_y + cart_h / 2],
        fill=(40, 40, 40),
    )
    pole = 1.0 * scale  # the pole is 1 unit long (2 x gymnasium's half-length 0.5)
    tip = (cx + pole * math.sin(theta), track_y - pole * math.cos(theta))
    draw.line([(cx, track_y), tip], fill=(204, 153, 102), width=max(2, int(0.08 * scale)))
    draw.ellipse([cx - 3, track_y - 3, cx + 3, track_y + 3], fill=(127, 127, 204))
    return np.asarray(picture)


def record_episode(
    env: Any,
    policy: Callable[[Any], Any],
    *,
    preprocess: Callable[[Any, Any], Any] | None = None,
    frame: Callable[[Any], np.ndarray] | None = None,
    max_steps: int | None = None,
) -> tuple[list[np.ndarray], float]:
    """Play one episode of ENV with POLICY and return (frames, total reward).

    POLICY maps the model's input to an action. That input is the observation itself, or
    PREPROCESS(previous observation, observation) when given (Pong's frame difference; the first
    step uses the first observation twice). FRAME turns an observation into a picture
    (`render_cartpole` for CartPole); by default the observation is the picture (Atari frames).
    MAX_STEPS caps the length of the recording.
    """
    observation, _ = env.reset()
    previous = observation
    to_frame = frame or (lambda obs: np.asarray(obs))
    frames = [to_frame(observation)]
    total = 0.0
    steps = 0
    while max_steps is None or steps < max_steps:
        model_input = observation if preprocess is None else preprocess(previous, observation)
        action = policy(model_input)
        previous = observation
        observation, reward, terminated, truncated, _ = env.step(int(np.asarray(action)))
        total += float(reward)
        steps += 1
        frames.append(to_frame(observation))
        if terminated or truncated:
            break
    return frames, total


def gif(frames: Sequence[Any], *, fps: int = 30, every: int = 1, scale: float = 1.0) -> Any:
    """FRAMES (arrays (height, width, 3), uint8) as an animated GIF shown in the notebook.

    Keeps one frame in EVERY and resizes by SCALE, to keep the notebook small. Returns an
    `IPython.display.Image`; its `.data` holds the GIF bytes (save them with `open(..., "wb")`).
    """
    from IPython.display import Image as IPythonImage
    from PIL import Image

    kept = [np.asarray(f, dtype=np.uint8) for f in list(frames)[:: max(1, every)]]
    if not kept:
        raise ValueError("gif needs at least one frame; the episode recorded none")
    pictures = [Image.fromarray(f) for f in kept]
    if scale != 1.0:
        w, h = pictures[0].size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pictures = [p.resize(size, Image.Resampling.NEAREST) for p in pictures]
    buffer = io.BytesIO()
    duration = max(20, round(1000 * max(1, every) / fps))  # ms per kept frame, real-time speed
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration, loop=0
    )
    return IPythonImage(data=buffer.getvalue(), format="gif")  # type: ignore[no-untyped-call]
