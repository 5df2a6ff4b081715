"""The helpers each lab's notebook imports, one module per lab id (as upstream's
`mitdeeplearning.lab2`): data plots, playback, environments. Public checks are in
`introdl.checks.<lab id>`. The old topic names (`introdl.music`, `introdl.midi`, `introdl.mnist`,
`introdl.debiasing`, `introdl.rl`) still import, as aliases of these modules."""
