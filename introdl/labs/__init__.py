"""The helpers each lab's notebook imports, one module per lab id (as upstream's
`mitdeeplearning.lab2`): data plots, playback, environments. Public checks are in
`introdl.checks.<lab id>`. A notebook imports them by these names, e.g.
`import introdl.labs.lab1_music as music`.

The old topic names (`introdl.music`, `introdl.midi`, `introdl.mnist`, `introdl.debiasing`,
`introdl.rl`) are a compatibility shim only, for notebooks fetched before the releases moved to
these names: each is the very same module object. Nothing in source/ or release/ imports them."""

# The course's labs, in course order: the one list (the engine, the hub and the tests read it here).
LABS = ("lab1_tensorflow", "lab1_music", "lab2_mnist", "lab2_debiasing", "lab3_rl")
