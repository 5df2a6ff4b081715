"""Old name of `introdl.labs.lab2_debiasing`, kept so that released notebooks keep working.

`import introdl.debiasing` gives the very same module object (so patching one patches the other).
"""

import sys

from introdl.labs import lab2_debiasing

sys.modules[__name__] = lab2_debiasing
