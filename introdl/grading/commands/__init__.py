"""The engine's two commands, `introdl grade` and `introdl grade-notebook`, one module each.

The command line itself (parsing, printing, exit codes) and the commands that grade nothing live
above the engine, in introdl/cli/.
"""
