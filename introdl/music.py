"""Old name of `introdl.labs.lab1_music`, kept so that released notebooks keep working.

`import introdl.music` gives the very same module object (so patching one patches the other).
"""

import sys

from introdl.labs import lab1_music

sys.modules[__name__] = lab1_music
