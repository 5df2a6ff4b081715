"""Do lab3_rl's CartPole tests charge CPU seconds, not waiting, and call a too-busy host an error?

The caps that decide are CPU seconds of the kernel process (in_kernel.Allowance, all its
threads); the wall-clock net only ends a run the host cannot finish, and the test then reports an
error ("the grading machine was too busy"), never a failed verdict. Numbers: CALIBRATION.md, "CPU
caps instead of wall-clock caps".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from introdl.grading.authoring import Lab, namespace
from introdl.grading.hidden.runner import run_hidden_tests
from tests.fixtures.notebook_student import NotebookStudent

ROOT = Path(__file__).resolve().parents[1]
LAB = Lab.named("lab3_rl", ROOT)
curves = LAB.module("curves")


def in_kernel(names: dict[str, Any] | None = None) -> Any:
    return curves.load_in_process(names or {})


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_waiting_is_not_charged_but_a_busy_loop_is() -> None:
    """Does a kernel that sleeps for longer than its CPU cap keep its allowance, while one that
    computes for as long runs it out?"""
    allowance = in_kernel().Allowance(cpu_seconds=0.3, wall_seconds=60)
    time.sleep(0.8)
    assert allowance.spent() is None
    assert allowance.cpu() < 0.1 < 0.7 < allowance.wall()
    busy(0.4)
    assert allowance.spent() == "cpu"


def test_cpu_of_the_kernels_other_threads_is_charged() -> None:
    """Is work done on another thread of the kernel (TensorFlow's thread pools) charged, while
    the thread that waits for it is not?"""
    allowance = in_kernel().Allowance(cpu_seconds=0.3, wall_seconds=60)
    worker = threading.Thread(target=busy, args=(0.5,))
    worker.start()
    worker.join()
    assert allowance.cpu() >= 0.45
    assert allowance.spent() == "cpu"


def test_a_kernel_the_host_does_not_schedule_hits_the_wall_net_not_the_cpu_cap() -> None:
    """A saturated host, made certain: the kernel spins on its allowance but is stopped (SIGSTOP)
    for 2 s, as a process the scheduler never runs. Is it the wall-clock net that ends it, with
    next to no CPU charged?"""
    child = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from introdl.grading.authoring import Lab
        curves = Lab("lab3_rl", __import__("pathlib").Path({str(ROOT)!r})).module("curves")
        allowance = curves.load_in_process({{}}).Allowance(cpu_seconds=1.0, wall_seconds=1.5)
        print("ready", flush=True)
        while (spent := allowance.spent()) is None:
            pass
        print(spent, round(allowance.cpu(), 3), round(allowance.wall(), 3), flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGCONT)
        spent, cpu, wall = proc.stdout.readline().split()
    finally:
        proc.kill()
        proc.wait()
    assert spent == "wall", (spent, cpu, wall)
    assert float(cpu) < 1.0 < 1.5 < float(wall)


def balancer(obs: np.ndarray) -> np.ndarray:
    return (40 * obs[..., 2] + 10 * obs[..., 3] > 0).astype(np.int64)


def test_evaluation_charges_the_policys_cpu_not_its_waiting() -> None:
    """Does the evaluation play on while the policy waits (a busy host answering slowly), stop
    on its CPU cap when the policy computes, and call it host-too-slow when the wall net ends
    it first?"""

    def waits(obs: np.ndarray) -> np.ndarray:
        time.sleep(0.02)
        return balancer(obs)

    def computes(obs: np.ndarray) -> np.ndarray:
        busy(0.02)
        return balancer(obs)

    seeds = [1, 2]
    waited = curves.play(waits, 1, seeds, max_steps=30, cpu_seconds=0.3, wall_seconds=60)
    assert (waited.out_of_time, waited.host_too_slow, waited.steps) == (False, False, 30)
    computed = curves.play(computes, 1, seeds, max_steps=30, cpu_seconds=0.3, wall_seconds=60)
    assert (computed.out_of_time, computed.host_too_slow) == (True, False)
    assert computed.steps < 30
    slow_host = curves.play(waits, 1, seeds, max_steps=30, cpu_seconds=0.3, wall_seconds=0.2)
    assert (slow_host.out_of_time, slow_host.host_too_slow) == (False, True)


def stub_notebook(step: Any) -> dict[str, Any]:
    """A CartPole 'student' without TensorFlow: STEP is what each choose_action call does."""

    def choose_action(model: Any, observations: np.ndarray, single: bool = True) -> np.ndarray:
        step()
        return np.zeros(len(observations), dtype=np.int64)  # always left: ~10-step episodes

    return {
        "create_cartpole_model": lambda n_actions=2: object(),
        "choose_action": choose_action,
        "discount_rewards": lambda rewards, gamma=0.95: np.zeros(len(rewards)),
        "train_step": lambda *args: None,
    }


def train(step: Any, cpu_seconds: float, wall_seconds: float) -> dict[str, Any]:
    settings = {
        **curves.TRAINING,
        "max_episodes": 40,
        "num_envs": 8,
        "cpu_seconds": cpu_seconds,
        "wall_seconds": wall_seconds,
        "floors": [],
    }
    return in_kernel(stub_notebook(step)).train_cartpole("a", 7, **settings)  # type: ignore[no-any-return]


def test_the_training_loop_stops_on_cpu_not_on_waiting() -> None:
    """In the grader's own training loop: does a choose_action that waits play every episode of
    the budget, one that computes stop on the CPU cap, and a host too slow stop on the wall net?"""
    waits = train(lambda: time.sleep(0.02), cpu_seconds=0.5, wall_seconds=60)
    assert waits["stopped"] == "episodes", waits["stopped"]
    assert waits["cpu_seconds"] < 0.5 < waits["seconds"]
    computes = train(lambda: busy(0.02), cpu_seconds=0.5, wall_seconds=60)
    assert computes["stopped"] == "cpu"
    assert 0.5 < computes["cpu_seconds"] < 1.0
    assert "CPU time ran out" in curves.judge_curve(computes["rewards"], "cpu").reason
    slow_host = train(lambda: time.sleep(0.02), cpu_seconds=0.5, wall_seconds=0.2)
    assert slow_host["stopped"] == "wall"


def test_a_rebound_process_time_does_not_change_the_graders_clock() -> None:
    """Does a notebook that replaces time.process_time after the grader installed its module
    (to hide its CPU use) still get charged?"""
    module = in_kernel()
    real = time.process_time
    try:
        time.process_time = lambda: 0.0
        allowance = module.Allowance(cpu_seconds=0.2, wall_seconds=60)
        give_up = time.monotonic() + 10  # a busy loop, not a clock read through time.process_time
        while allowance.spent() is None and time.monotonic() < give_up:
            pass
        assert allowance.spent() == "cpu"
    finally:
        time.process_time = real


SUITE = """
import pytest
from introdl.grading.hidden.marks import HostTooSlow

@pytest.mark.grade("t", points=1)
def test_host_was_too_busy(student):
    raise HostTooSlow("the training did not finish within the safety net: the host was busy")

@pytest.mark.grade("t", points=1)
def test_did_not_learn(student):
    assert False, "the reward did not rise"
"""


def test_a_test_ended_by_its_wall_net_is_an_error_not_a_failure(tmp_path: Path) -> None:
    """Does the engine report a hidden test that raised HostTooSlow as an error, with its
    message and no points, and an ordinary failed assertion still as failed?"""
    suite = tmp_path / "grader_tests" / "lab_x"
    suite.mkdir(parents=True)
    (suite / "test_x.py").write_text(SUITE, encoding="utf-8")
    import nbformat

    student = NotebookStudent(nbformat.v4.new_notebook())
    outcomes = {t.name: t for t in run_hidden_tests(suite, student, seed=0, points={"t": 2})}
    busy_host = outcomes["test_host_was_too_busy"]
    assert busy_host.status == "error"
    assert busy_host.score == 0
    assert "the host was busy" in busy_host.output
    assert outcomes["test_did_not_learn"].status == "failed"


class InProcessKernel:
    """The `kernel` fixture's door, served by in_kernel.py bound to the reference's namespace."""

    def __init__(self) -> None:
        self.module = curves.load_in_process(namespace(LAB, None))

    def call(self, name: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        assert name.startswith("_grader_lab3_rl.")
        return getattr(self.module, name.split(".", 1)[1])(*args, **kwargs)


@pytest.fixture(scope="module")
def reference_kernel() -> InProcessKernel:
    return InProcessKernel()


def test_the_reward_curve_test_is_an_error_when_the_wall_net_runs_out(
    reference_kernel: InProcessKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Does the hidden reward-curve test, when the host is too slow for its wall net, raise
    HostTooSlow (an error) rather than fail the reference's learning?"""
    hidden = LAB.module("test_lab3_rl_cartpole_training")
    from introdl.grading.hidden.marks import HostTooSlow

    # the hidden suite's own curves (the runner may have imported grader_tests afresh)
    monkeypatch.setitem(hidden.curves.TRAINING, "wall_seconds", 0.3)
    monkeypatch.setattr(hidden, "TRAINED", {})
    monkeypatch.setattr(hidden, "HOST_TOO_SLOW", [])
    with pytest.raises(HostTooSlow, match="too busy"):
        hidden.test_cartpole_reward_curve_rises_past_target(reference_kernel, 5)
    # the evaluation that follows has no agent because of the host, not of the student
    rng = np.random.default_rng(0)
    with pytest.raises(HostTooSlow, match=r"No trained agent to evaluate: .*too busy"):
        hidden.test_trained_cartpole_policy_balances_in_graders_environments(reference_kernel, rng)


def test_the_reward_curve_test_fails_a_seed_that_runs_out_of_cpu(
    reference_kernel: InProcessKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a CPU cap too small to learn in, does the test fail (not error) and tell the
    student about CPU time?"""
    hidden = LAB.module("test_lab3_rl_cartpole_training")

    monkeypatch.setattr(hidden, "HOST_TOO_SLOW", [])
    monkeypatch.setitem(hidden.curves.TRAINING, "cpu_seconds", 0.3)
    monkeypatch.setattr(hidden.curves, "TRAINING_CPU_SECONDS", 5.5)
    with pytest.raises(AssertionError, match="ran out of CPU time"):
        hidden.test_cartpole_reward_curve_rises_past_target(reference_kernel, 5)
    assert not hidden.HOST_TOO_SLOW
