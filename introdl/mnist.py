"""Compatibility shim: the old name of `introdl.labs.lab2_mnist`. Use that name in new code.

Kept only for notebooks students fetched before the releases switched to `introdl.labs.lab2_mnist`
(issue 26): the sources and releases no longer import it (tests/test_lab_helper_names.py).
`import introdl.mnist` gives the very same module object (so patching one patches the other).
"""

import sys

from introdl.labs import lab2_mnist

sys.modules[__name__] = lab2_mnist
