"""How the hidden tests judge CartPole learning; shared with the calibration script.

The grader trains the student's agent with `in_kernel.train_cartpole` (in the kernel) under
TRAINING, on several seeds, judges each reward curve with `judge_curve`, then has the trained
policies play in the kernel (`in_kernel.evaluate`, one door call) and replays their actions in its
own environments with `replay`, which score them. The thresholds here come from the calibration
runs written down in CALIBRATION.md.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader_tests.lab3_rl import in_kernel as loop  # its episode loop, run here too

IN_KERNEL = Path(__file__).with_name("in_kernel.py")  # the grader's code in the student's kernel
RL = "_grader_lab3_rl"  # IN_KERNEL as installed in the kernel by `student.install`
STOPS = ("ended", "steps", "bar", "cpu", "wall")  # why in_kernel.play stops

# The grader's training budget for one seed (arguments of in_kernel.train_cartpole).
TRAINING: dict[str, Any] = {
    "max_episodes": 800,  # episodes at most per seed
    "num_envs": 32,  # environments stepped in lockstep (one choose_action call for all)
    "episodes_per_update": 8,  # finished episodes per train_step
    "learning_rate": 1e-2,  # Adam
    "target": 195.0,  # stop once the mean of the last WINDOW episodes reaches this
    "window": 20,  # episodes in the moving average
    # CPU seconds of the kernel process (all its threads, see in_kernel.Allowance) per seed: the
    # budget that decides. Waiting for a busy host is not charged, so it decides the same at any
    # load. The reference spends 2.5-4.3 s unloaded, 3.8-6.2 s at load 9-13 (CALIBRATION.md,
    # "CPU caps instead of wall-clock caps").
    "cpu_seconds": 30.0,
    # Wall-clock safety net per seed, not a verdict: a seed it ends makes the test an error
    # ("the grading host was too busy"), never a failure (the test passes the time left).
    "wall_seconds": 90.0,
    # (episodes, floor): once that many episodes have ended, a WINDOW-episode mean below FLOOR
    # fails the seed there. Agents that went on to learn were at 23 or more after 300 episodes
    # and 65 or more after 480; agents that never learn stay at 9-33 (CALIBRATION.md, "Stopping
    # early"). The target is looked at after every step, as before.
    "floors": [[300, 15.0], [480, 40.0]],
}
SEEDS = 3  # agents trained per grading at most (fewer when the first ones decide: `seeds_verdict`)
# CPU cap for all seeds together (kernel CPU seconds). The reference's slowest pair of seeds
# spent 12.1 s loaded; the cap bounds the grading of a slow (model.predict) but correct submission.
TRAINING_CPU_SECONDS = 60.0
# Wall-clock safety net of the whole reward-curve test (its pytest budget is 100 s): past it
# the test is an error, "the host was too busy", not a failure.
TRAINING_WALL_SECONDS = 90.0
# A fresh policy keeps the pole up ~22 steps; a curve that starts above this did not have to learn.
START_AT_MOST = 60.0
# The trained policies, played in the kernel and replayed (scored) in the grader's own environments.
EVAL_EPISODES = 8  # episodes per trained agent
EVAL_MAX_STEPS = 200  # each evaluation episode is cut here
EVAL_MEAN_AT_LEAST = 100.0  # mean reward over those episodes
EVAL_CPU_SECONDS = 20.0  # CPU cap of the evaluation (kernel CPU s; the reference: under 1 s)
EVAL_WALL_SECONDS = 40.0  # wall-clock safety net (pytest budget 50 s): an error, not a failure


@dataclass(frozen=True)
class Verdict:
    learned: bool
    start: float  # mean reward of the first WINDOW episodes
    best: float  # highest moving average reached
    episodes: int
    reason: str  # in words, for feedback


def judge_curve(
    rewards: Sequence[float], stopped: str, floors: Sequence[Sequence[float]] | None = None
) -> Verdict:
    """Did this reward curve start low, rise, and cross the target within the budget?

    FLOORS (default: TRAINING's) are (episodes, floor): once that many episodes have ended, a
    WINDOW-episode mean below FLOOR fails the curve, unless the target was reached before. The
    curve is judged from the rewards alone, whatever STOPPED says.
    """
    window = int(TRAINING["window"])
    target = float(TRAINING["target"])
    values = np.asarray(rewards, dtype=np.float64)
    if values.size < window:
        why = "before its CPU time ran out" if stopped == "cpu" else f"({stopped})"
        return Verdict(
            False,
            float(values.mean()) if values.size else 0.0,
            0.0,
            int(values.size),
            f"only {values.size} episodes were played {why}",
        )
    smoothed = np.convolve(values, np.ones(window) / window, mode="valid")
    start, best = float(smoothed[0]), float(smoothed.max())
    if start > START_AT_MOST:
        return Verdict(
            False,
            start,
            best,
            values.size,
            f"the untrained agent already averaged {start:.0f} over its first {window} episodes; "
            "a new model from create_cartpole_model() should start from scratch",
        )
    for at, floor in TRAINING["floors"] if floors is None else floors:
        at = int(at)
        if values.size < at or smoothed[: at - window + 1].max() >= target:
            break  # not played that far, or the target decided first
        mean = float(smoothed[at - window])
        if mean < floor:
            return Verdict(
                False,
                start,
                float(smoothed[: at - window + 1].max()),
                at,
                f"the {window}-episode mean reward was only {mean:.0f} after {at} episodes (it "
                f"started at {start:.0f}); agents that learn are above {floor:.0f} by then, so "
                "the training of this seed stopped there",
            )
    if best < target:
        why = {
            "cpu": "when its CPU time ran out",
            "episodes": f"after {values.size} episodes",
            "target": "",
        }.get(stopped, "")
        return Verdict(
            False,
            start,
            best,
            values.size,
            f"the {window}-episode mean reward rose from {start:.0f} to at most {best:.0f} {why}, "
            f"short of {target:.0f}",
        )
    return Verdict(
        True, start, best, values.size, f"reached {best:.0f} after {values.size} episodes"
    )


def seeds_verdict(learned: Sequence[bool]) -> bool | None:
    """The reward-curve test's verdict from its seeds so far, in order; None: train another seed.

    The first seed passes the test if it learns. If it does not, both of the next two must
    learn: one unlucky seed costs nothing (CALIBRATION.md, "One seed when it learns").
    """
    if not learned:
        return None
    if learned[0]:
        return True
    rest = list(learned[1:SEEDS])
    if not all(rest):
        return False
    return True if len(rest) == SEEDS - 1 else None


@dataclass(frozen=True)
class Played:
    totals: np.ndarray  # reward of each episode so far, shape (agents, len(seeds))
    out_of_time: bool  # CPU_SECONDS ran out with episodes still running (the policy is slow)
    steps: int  # steps played (the longest episode so far)
    best_mean: float  # the mean if every episode still running lasted to MAX_STEPS
    host_too_slow: bool = False  # the wall-clock net ran out first: no verdict, an error


def play(
    act: Callable[[np.ndarray], Any],
    agents: int,
    seeds: Sequence[int],
    max_steps: int = EVAL_MAX_STEPS,
    cpu_seconds: float = EVAL_CPU_SECONDS,
    wall_seconds: float = EVAL_WALL_SECONDS,
    bar: float | None = None,
    cpu: Callable[[], float] = time.process_time,
) -> Played:
    """Play one CartPole episode per seed for each of AGENTS policies, in this process.

    ACT maps observations (agents, len(seeds), 4) to actions (agents, len(seeds)); it is called
    once per step for all episodes. CPU is the clock of the policy's CPU seconds. Stops when every
    episode has ended, after MAX_STEPS steps, when the policy has spent CPU_SECONDS of CPU
    (`out_of_time`; episodes still running then keep the reward they had), when WALL_SECONDS of
    wall-clock time have passed (`host_too_slow`, the safety net: no verdict), or, given BAR, as
    soon as the mean reward is sure to end at least BAR or sure to end below it. CartPole pays
    exactly 1 per step, so the mean at the end lies between the mean so far and the mean if every
    running episode lasted to MAX_STEPS: stopping there never changes which side of BAR the mean
    ends on, only the feedback's number (then a bound). The loop is in_kernel.play, which the
    hidden test runs in the kernel (in_kernel.evaluate) and then replays here (`replay`).
    """
    started, cpu_started = time.monotonic(), cpu()

    def spent() -> str | None:
        if cpu() - cpu_started > cpu_seconds:
            return "cpu"
        if time.monotonic() - started > wall_seconds:
            return "wall"
        return None

    return _played(loop.play(act, agents, seeds, max_steps, bar, spent), max_steps)


def replay(
    answer: Any,
    agents: int,
    seeds: Sequence[int],
    max_steps: int = EVAL_MAX_STEPS,
    bar: float | None = None,
) -> Played:
    """The evaluation the kernel played (in_kernel.evaluate's ANSWER), replayed in the grader's
    own environments: the rewards are the grader's, the kernel gives only the actions. The same
    loop on the same seeds stops where the kernel's did; a kernel that stopped on its CPU cap or
    its wall net stops the replay there, and actions that end before the verdict fail."""
    if not isinstance(answer, dict) or answer.get("stopped") not in STOPS:
        raise AssertionError("the grader's evaluation of your trained agents returned nothing")
    recorded = np.asarray(answer.get("actions"))
    if recorded.ndim != 3 or recorded.shape[1:] != (agents, len(seeds)):
        raise AssertionError(
            f"the grader's evaluation returned actions of shape {recorded.shape}, not "
            f"(steps, {agents}, {len(seeds)})"
        )
    budget = answer["stopped"] if answer["stopped"] in ("cpu", "wall") else None
    steps = [0]  # actions handed out so far

    def act(obs: np.ndarray) -> np.ndarray:
        if steps[0] == len(recorded):
            raise AssertionError("the grader's evaluation of your agents stopped before a verdict")
        steps[0] += 1
        return recorded[steps[0] - 1]

    def spent() -> str | None:
        return budget if steps[0] == len(recorded) else None

    return _played(loop.play(act, agents, seeds, max_steps, bar, spent), max_steps)


def _played(result: dict[str, Any], max_steps: int) -> Played:
    """in_kernel.play's result as a Played."""
    totals, running, step = result["totals"], result["running"], int(result["steps"])
    best = float((totals.sum() + running.sum() * (max_steps - step)) / totals.size)
    return Played(totals, result["stopped"] == "cpu", step, best, result["stopped"] == "wall")


def load_in_process(namespace: dict[str, Any]) -> types.ModuleType:
    """in_kernel.py as a module bound to NAMESPACE in this process (calibration runs)."""
    module = types.ModuleType("_grader_lab3_rl")
    exec(compile(IN_KERNEL.read_text(), str(IN_KERNEL), "exec"), module.__dict__)
    module.NOTEBOOK = namespace  # what the door does in the kernel
    return module
