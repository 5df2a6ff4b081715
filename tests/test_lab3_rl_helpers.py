"""Do the RL lab's helpers (introdl.labs.lab3_rl) give seeded environments, correct frames, curves and GIFs?"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from introdl.labs import lab3_rl as rl


def test_seeded_cartpole_replays_the_same_episodes() -> None:
    """Do two CartPole environments made with one seed give the same run of episodes (and another
    seed a different one), although only the first reset is seeded?"""

    def starts(seed: int) -> list[np.ndarray]:
        env = rl.make_cartpole(seed=seed)
        return [env.reset()[0] for _ in range(3)]

    a, b, c = starts(7), starts(7), starts(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[1]), "later episodes should not replay the first one"
    assert not np.array_equal(a[0], c[0])


def test_pong_starts_offline_with_frames_and_six_actions() -> None:
    """Does Pong start from the ROMs inside ale-py, with RGB frames, 6 actions and a step limit?"""
    env = rl.make_pong(seed=1, max_episode_steps=5)
    frame, _ = env.reset()
    assert frame.shape == (210, 160, 3)
    assert frame.dtype == np.uint8
    assert env.action_space.n == 6
    steps = 0
    truncated = terminated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
    assert steps == 5
    assert truncated


def test_pong_background_constants_match_real_frames() -> None:
    """Are the playing field's rows and a background colour where PONG_CROP_ROWS and
    PONG_BACKGROUND say (the notebook's preprocessing relies on them)?"""
    frame, _ = rl.make_pong(seed=3).reset()
    top, bottom = rl.PONG_CROP_ROWS
    field = frame[top:bottom, :, 0]
    values, counts = np.unique(field, return_counts=True)
    assert int(values[np.argmax(counts)]) in rl.PONG_BACKGROUND


def test_dilate_grows_objects_by_one_pixel_and_keeps_zeros_outside() -> None:
    """Does a 3 x 3 dilation turn a dot into a 3 x 3 square, clipped at the border?"""
    image = np.zeros((5, 6), dtype=np.float32)
    image[2, 3] = 1
    image[0, 0] = 1
    out = rl.dilate(image, 3)
    expected = np.zeros_like(image)
    expected[1:4, 2:5] = 1
    expected[0:2, 0:2] = 1
    assert np.array_equal(out, expected)
    assert out.dtype == image.dtype
    assert np.array_equal(rl.dilate(image, 1), image)
    with pytest.raises(ValueError, match="odd"):
        rl.dilate(image, 2)


def test_smooth_is_a_trailing_mean_that_starts_at_the_first_value() -> None:
    """Is smooth(values, w)[i] the mean of the last w values up to i?"""
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert np.allclose(rl.smooth(values, 2), [10, 15, 25, 35, 45])
    assert np.allclose(rl.smooth(values, 20), np.cumsum(values) / np.arange(1, 6))
    assert rl.smooth([], 3).shape == (0,)


def test_reward_plot_renders_a_png_with_or_without_values() -> None:
    """Does the live plot draw a picture for an empty and a full curve (no notebook needed)?"""
    plot = rl.RewardPlot(target=195)
    for values in ([], [10.0, 30.0, 200.0]):
        png = plot.render(values)
        assert Image.open(io.BytesIO(png)).format == "PNG"
    plot.update([1.0, 2.0])  # outside IPython: does nothing, raises nothing


def test_record_episode_and_gif_of_cartpole() -> None:
    """Does a recorded episode hold one frame per step plus the first, and play back as a GIF?"""
    env = rl.make_cartpole(seed=5)
    frames, total = rl.record_episode(env, lambda obs: 0, frame=rl.render_cartpole)
    assert len(frames) == total + 1
    assert frames[0].shape == (180, 300, 3)
    assert frames[0].dtype == np.uint8
    picture = rl.gif(frames, every=2, scale=0.5)
    image = Image.open(io.BytesIO(picture.data))
    # Pillow merges identical consecutive frames (the cart barely moves between two of them).
    assert image.format == "GIF"
    assert 2 <= image.n_frames <= len(frames[::2])
    assert image.size == (150, 90)


def test_record_episode_feeds_frame_differences_when_asked() -> None:
    """With PREPROCESS, does the policy get preprocess(previous, current), the first frame twice?"""
    seen = []

    def policy(x: object) -> int:
        seen.append(x)
        return 0

    frames, _ = rl.record_episode(
        rl.make_pong(seed=2, max_episode_steps=3),
        policy,
        preprocess=lambda prev, curr: (prev, curr),
    )
    assert len(frames) == 4
    assert len(seen) == 3
    assert seen[0][0] is seen[0][1]
    assert np.array_equal(seen[1][0], frames[0])
    assert np.array_equal(seen[1][1], frames[1])


def test_render_cartpole_draws_the_pole_at_its_angle() -> None:
    """Does a pole leaning right put its (brown) pixels right of the cart's centre?"""
    upright = rl.render_cartpole([0.0, 0.0, 0.0, 0.0])
    leaning = rl.render_cartpole([0.0, 0.0, 0.5, 0.0])
    brown = np.array([204, 153, 102])

    def pole_columns(picture: np.ndarray) -> np.ndarray:
        return np.nonzero(np.all(picture == brown, axis=-1))[1]

    assert abs(pole_columns(upright).mean() - 150) < 3
    assert pole_columns(leaning).mean() > 160
