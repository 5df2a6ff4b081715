"""Old name of `introdl.labs.lab3_rl`, kept so that released notebooks keep working.

`import introdl.rl` gives the very same module object (so patching one patches the other).
"""

import sys

from introdl.labs import lab3_rl

sys.modules[__name__] = lab3_rl
