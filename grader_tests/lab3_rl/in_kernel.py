"""Grader code that runs INSIDE the student's kernel, installed there by the hidden tests.

Episode loops call the student's code at every step; through the `student` door each call would
be a round trip (~20 ms), so loops run here, next to the student's functions, on environments
created here with the grader's seeds. Nothing here is trusted: the grader checks what comes back,
and the final policy's actions are replayed in the grader's own environments. Nothing here is
secret either (no expected values, no reference implementations): the kernel can read it.

Installed by the hidden tests as ``_grader_lab3_rl``; the door binds `NOTEBOOK` to the notebook's
namespace, where the student's functions are looked up by name at call time.
"""

import time

import numpy as np

NOTEBOOK = {}  # the notebook's namespace, bound by the door (calibration binds its own)
AGENTS = {}  # trained models, by name, for the grader to evaluate

# The clocks, bound when the grader installs this module: a notebook that rebinds
# time.process_time afterwards does not change what the grader reads.
_cpu_clock = time.process_time
_wall_clock = time.monotonic


class Allowance:
    """CPU seconds a piece of grading may spend in this kernel, and a wall-clock safety net.

    CPU time is this process's (CLOCK_PROCESS_CPUTIME_ID: user + system time of ALL its threads,
    TensorFlow's pools included; not child processes, which the grader's loops do not start).
    Waiting (asleep, blocked, or not scheduled on a busy host) is not charged, so the CPU cap
    decides the same way on an idle and on a saturated host. The wall-clock net only ends a run
    the host is too slow to finish; the grader reports that as an error, not as a failure.
    """

    def __init__(self, cpu_seconds, wall_seconds):
        self.cpu_seconds = float(cpu_seconds)
        self.wall_seconds = float(wall_seconds)
        self.cpu_started = _cpu_clock()
        self.wall_started = _wall_clock()

    def cpu(self):
        return _cpu_clock() - self.cpu_started

    def wall(self):
        return _wall_clock() - self.wall_started

    def spent(self):
        """ "cpu" once the CPU cap is used up, "wall" once the safety net ran out, else None."""
        if self.cpu() > self.cpu_seconds:
            return "cpu"
        if self.wall() > self.wall_seconds:
            return "wall"
        return None


def seed_everything(seed):
    import keras

    keras.utils.set_random_seed(int(seed))


# --- CartPole: grader-side training of the student's agent ------------------------------------


def actions_for(model, observations, n_actions):
    """The student's choose_action on a batch, checked to be one valid action per observation."""
    chosen = NOTEBOOK["choose_action"](model, observations, single=False)
    actions = np.asarray(chosen).reshape(-1)
    if actions.shape[0] != len(observations):
        raise ValueError(
            f"choose_action(model, observations, single=False) returned {actions.shape[0]} "
            f"actions for {len(observations)} observations; it should return one per observation"
        )
    if not np.issubdtype(actions.dtype, np.integer):
        if not np.all(np.equal(np.mod(actions, 1), 0)):
            raise ValueError("choose_action should return whole-number actions (0, 1, ...)")
        actions = actions.astype(np.int64)
    if actions.min() < 0 or actions.max() >= n_actions:
        raise ValueError(
            f"choose_action returned an action outside 0..{n_actions - 1}: {int(actions.min())} "
            f"to {int(actions.max())}"
        )
    return actions


def train_cartpole(
    agent,
    seed,
    *,
    max_episodes,
    num_envs,
    episodes_per_update,
    learning_rate,
    target,
    window,
    cpu_seconds,
    wall_seconds,
    floors=(),
):
    """Train a fresh agent from the student's code on CartPole with the grader's seed.

    NUM_ENVS environments run in lockstep, so one choose_action call serves all of them; when an
    environment's episode ends it restarts at once. Every EPISODES_PER_UPDATE finished episodes,
    one train_step on their observations, actions and discount_rewards (each episode's returns
    computed on its own). Stops when the mean of the last WINDOW episode rewards reaches TARGET,
    after MAX_EPISODES episodes, past CPU_SECONDS of this kernel's CPU ("cpu": the student's
    code is too slow) or WALL_SECONDS of wall-clock time ("wall": the safety net, an error),
    and for each (EPISODES, FLOOR) of FLOORS, once EPISODES episodes have ended, when the mean
    of the last WINDOW of them is below FLOOR ("floor"). Returns the episode rewards in the
    order the episodes ended, why it stopped, and the CPU and wall seconds; the model is kept
    as AGENTS[agent].
    """
    import gymnasium as gym
    import keras

    allowance = Allowance(cpu_seconds, wall_seconds)
    seed_everything(seed)
    model = NOTEBOOK["create_cartpole_model"]()
    optimizer = keras.optimizers.Adam(float(learning_rate))
    AGENTS[agent] = model
    envs = [gym.make("CartPole-v1") for _ in range(num_envs)]
    observations = [env.reset(seed=int(seed) * 1000 + i)[0] for i, env in enumerate(envs)]
    episodes = [([], [], []) for _ in envs]  # (observations, actions, rewards) per environment
    finished = []
    rewards = []
    stopped = "episodes"
    pending = sorted((int(e), float(floor)) for e, floor in floors)
    while len(rewards) < max_episodes and stopped == "episodes":
        spent = allowance.spent()
        if spent is not None:
            stopped = spent
            break
        actions = actions_for(model, np.stack(observations).astype(np.float32), 2)
        for i, env in enumerate(envs):
            obs_i, act_i, rew_i = episodes[i]
            obs_i.append(observations[i])
            act_i.append(int(actions[i]))
            observations[i], reward, terminated, truncated, _ = env.step(int(actions[i]))
            rew_i.append(float(reward))
            if terminated or truncated:
                rewards.append(float(sum(rew_i)))
                finished.append(episodes[i])
                episodes[i] = ([], [], [])
                observations[i] = env.reset()[0]
        if len(finished) >= episodes_per_update:
            update(model, optimizer, finished)
            finished = []
        if len(rewards) >= window and np.mean(rewards[-window:]) >= target:
            stopped = "target"
            break
        while pending and len(rewards) >= pending[0][0] and stopped == "episodes":
            at, floor = pending.pop(0)
            mean = np.mean(rewards[at - window : at])
            stopped = "floor" if mean < floor else stopped
    return {
        "rewards": rewards[:max_episodes],
        "stopped": stopped,
        "cpu_seconds": allowance.cpu(),
        "seconds": allowance.wall(),
    }


def update(model, optimizer, episodes):
    """One train_step on a batch of finished episodes."""
    discount = NOTEBOOK["discount_rewards"]
    observations = np.vstack([np.asarray(o, dtype=np.float32) for o, _, _ in episodes])
    actions = np.concatenate([np.asarray(a, dtype=np.int32) for _, a, _ in episodes])
    returns = np.concatenate(
        [
            np.asarray(discount(np.asarray(r, dtype=np.float32)), dtype=np.float32)
            for _, _, r in episodes
        ]
    )
    if returns.shape != actions.shape:
        raise ValueError(
            f"discount_rewards returned {returns.shape[0]} values for {actions.shape[0]} rewards; "
            "it should return one return per reward"
        )
    NOTEBOOK["train_step"](model, optimizer, observations, actions, returns)


def act(agents, observations):
    """Actions of the trained AGENTS (names) for OBSERVATIONS shaped (agents, envs, 4)."""
    observations = np.array(observations, dtype=np.float32)  # a copy, as the door's was
    return np.stack(
        [actions_for(AGENTS[a], observations[k], 2) for k, a in enumerate(agents)]
    ).astype(np.int64)


def play(act, agents, seeds, max_steps, bar=None, spent=lambda: None):
    """One CartPole episode per seed for each of AGENTS policies; the evaluation's loop.

    ACT maps observations (agents, len(seeds), 4) to actions (agents, len(seeds)), once per step
    for all episodes, ended ones included. Stops when every episode has ended ("ended"), after
    MAX_STEPS steps, given BAR once the mean reward is sure to end on one side of it ("bar";
    see curves.play), or when SPENT() names a spent budget ("cpu", "wall"). Returns the rewards,
    the episodes still running, the steps, why it stopped and the actions of every step.
    """
    import gymnasium as gym

    envs = [[gym.make("CartPole-v1") for _ in seeds] for _ in range(agents)]
    starts = [
        [env.reset(seed=int(s))[0] for env, s in zip(row, seeds, strict=True)] for row in envs
    ]
    obs = np.array(starts, dtype=np.float32)  # (agents, len(seeds), 4)
    totals = np.zeros((agents, len(seeds)))
    running = np.ones((agents, len(seeds)), dtype=bool)
    taken = []

    def ended(step, why):
        return dict(totals=totals, running=running, steps=step, stopped=why, actions=taken)

    for step in range(max_steps):
        if not running.any():
            return ended(step, "ended")
        best = (totals.sum() + running.sum() * (max_steps - step)) / totals.size
        if bar is not None and (totals.mean() >= bar or best < bar):
            return ended(step, "bar")
        why = spent()
        if why is not None:
            return ended(step, why)
        actions = np.asarray(act(obs))
        if actions.shape != running.shape or not np.issubdtype(actions.dtype, np.integer):
            raise AssertionError(
                "choose_action(model, observations, single=False) should return one whole-number "
                f"action per observation; for {running.shape[1]} observations it returned "
                f"an array of shape {actions.shape} and dtype {actions.dtype}"
            )
        taken.append(actions.astype(np.int64))
        for a, row in enumerate(envs):
            for e, env in enumerate(row):
                if not running[a, e]:
                    continue
                action = int(actions[a, e])
                if action not in (0, 1):
                    raise AssertionError(
                        f"choose_action returned {action}; CartPole's actions are 0 and 1"
                    )
                o, reward, terminated, truncated, _ = env.step(action)
                obs[a, e] = o
                totals[a, e] += reward
                running[a, e] = not (terminated or truncated)
    return ended(max_steps, "steps")


def evaluate(agents, seeds, *, max_steps, bar, cpu_seconds, wall_seconds):
    """The trained AGENTS (names) played here with `play` in one door call (not one per step);
    the grader replays the actions in its own environments (curves.replay). CPU_SECONDS caps
    this kernel's CPU, WALL_SECONDS is the safety net (see Allowance)."""
    allowance = Allowance(cpu_seconds, wall_seconds)
    played = play(lambda obs: act(agents, obs), len(agents), seeds, max_steps, bar, allowance.spent)
    actions = np.asarray(played["actions"], dtype=np.int64).reshape(-1, len(agents), len(seeds))
    return {"actions": actions, "stopped": played["stopped"], "cpu_seconds": allowance.cpu()}


# --- rollouts: what the student's collect functions recorded ---------------------------------


def trace(name):
    """The memories in the kernel variable NAME as plain arrays, one dict per memory."""
    memories = NOTEBOOK[name]
    out = []
    for memory in memories:
        out.append(
            {
                "observations": np.asarray(
                    [np.asarray(o, dtype=np.float32) for o in memory.observations]
                ),
                "actions": np.asarray([int(np.asarray(a)) for a in memory.actions], dtype=np.int64),
                "rewards": np.asarray(
                    [float(np.asarray(r)) for r in memory.rewards], dtype=np.float64
                ),
            }
        )
    return out


# --- a training step on fixed data ----------------------------------------------------------------


def logits(model_name, inputs):
    """The logits of the kernel's model MODEL_NAME on INPUTS, as an array."""
    return np.asarray(NOTEBOOK[model_name](np.asarray(inputs, dtype=np.float32)))


def train_on(model_name, optimizer, learning_rate, inputs, actions, returns, steps=1):
    """STEPS calls of the student's train_step on fixed data with a fresh OPTIMIZER."""
    import keras

    make = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[optimizer]
    opt = make(learning_rate)
    model = NOTEBOOK[model_name]
    for _ in range(int(steps)):
        NOTEBOOK["train_step"](
            model,
            opt,
            np.asarray(inputs, dtype=np.float32),
            np.asarray(actions, dtype=np.int32),
            np.asarray(returns, dtype=np.float32),
        )


def each(function, calls, model=None, **kwargs):
    """The student's FUNCTION (a name, or a path such as "m.add_to_memory") called with each
    argument list of CALLS in turn, after the kernel object named MODEL if given, and KWARGS:
    several calls in one door call. Their results, as a list."""
    target = NOTEBOOK[function.split(".")[0]]
    for attribute in function.split(".")[1:]:
        target = getattr(target, attribute)
    first = () if model is None else (NOTEBOOK[model],)
    return [target(*first, *args, **kwargs) for args in calls]


def build_linear_policy(name, n_inputs, kernel, bias):
    """A kernel model NAME whose logits are x @ KERNEL + BIAS (the grader knows its policy)."""
    import keras

    model = keras.Sequential([keras.Input((int(n_inputs),)), keras.layers.Dense(len(bias))])
    model.set_weights([np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)])
    NOTEBOOK[name] = model


def build_flat_pong_policy(name, n_actions):
    """A kernel model NAME giving equal logits to every action of Pong (a uniform policy)."""
    import keras

    model = keras.Sequential(
        [keras.Input((40, 40, 1)), keras.layers.Flatten(), keras.layers.Dense(int(n_actions))]
    )
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    NOTEBOOK[name] = model


def rollout(game, seeds, max_episode_steps, policy, memories):
    """The student's collect_<GAME>_rollout on fresh environments seeded with SEEDS, driven by
    the kernel model POLICY; the Memory objects it returns are kept as MEMORIES."""
    from introdl.labs import lab3_rl as rl

    make = {"cartpole": rl.make_cartpole, "pong": rl.make_pong}[game]
    envs = [make(seed=int(s), max_episode_steps=int(max_episode_steps)) for s in seeds]
    collect = NOTEBOOK[f"collect_{game}_rollout"]
    NOTEBOOK[memories] = collect(envs, NOTEBOOK[policy])


def layer_names(model_name):
    """The class names of the kernel model MODEL_NAME's layers."""
    return [type(layer).__name__ for layer in NOTEBOOK[model_name].layers]


def weights(model_name):
    """The weights of the kernel model MODEL_NAME, as a list of arrays."""
    return [np.asarray(w) for w in NOTEBOOK[model_name].get_weights()]


def pong_updates(seed, *, num_envs, max_steps, updates, learning_rate):
    """Pong training steps end to end with the student's code, on short games: each update
    collect_pong_rollout on NUM_ENVS games cut after MAX_STEPS steps, discount_rewards_pong per
    game, one train_step. Stops after the first update whose games scored a point (the weights
    must then change), or after UPDATES. Returns what the grader checks."""
    import keras

    from introdl.labs import lab3_rl as rl

    seed_everything(seed)
    model = NOTEBOOK["create_pong_model"](6)
    optimizer = keras.optimizers.Adam(float(learning_rate))
    envs = [
        rl.make_pong(seed=int(seed) + i, max_episode_steps=int(max_steps)) for i in range(num_envs)
    ]
    steps, points, changed = [], 0, False
    for _ in range(int(updates)):
        if points:
            break
        memories = NOTEBOOK["collect_pong_rollout"](envs, model)
        before = [np.array(w) for w in model.get_weights()]
        rewards = [np.asarray(m.rewards, dtype=np.float32) for m in memories]
        NOTEBOOK["train_step"](
            model,
            optimizer,
            np.concatenate(
                [np.stack([np.asarray(o, np.float32) for o in m.observations]) for m in memories]
            ),
            np.concatenate([np.asarray(m.actions, dtype=np.int32) for m in memories]),
            np.concatenate(
                [
                    np.asarray(NOTEBOOK["discount_rewards_pong"](r), dtype=np.float32)
                    for r in rewards
                ]
            ),
        )
        steps.append([len(m.actions) for m in memories])
        points += int(sum(np.count_nonzero(r) for r in rewards))
        after = model.get_weights()
        changed = changed or any(
            not np.array_equal(a, b) for a, b in zip(before, after, strict=False)
        )
    finite = all(np.all(np.isfinite(w)) for w in model.get_weights())
    return {"steps": steps, "points": points, "changed": changed, "finite": finite}
