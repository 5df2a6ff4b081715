"""The grading engine: sandboxed student kernels, hidden pytest suites, nbgrader gradebook.

May import the lab helpers in `introdl`; the helpers never import this package.
"""
