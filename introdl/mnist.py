"""Old name of `introdl.labs.lab2_mnist`, kept so that released notebooks keep working.

`import introdl.mnist` gives the very same module object (so patching one patches the other).
"""

import sys

from introdl.labs import lab2_mnist

sys.modules[__name__] = lab2_mnist
