"""What the MIP children's forkserver preloads (`solve.forkserver_context`): `planner.solve`, with
Ctrl-C ignored while it imports.

Ctrl-C in a terminal reaches every process of the foreground group. The solving process
handles it (it kills its MIP children and keeps what they reported); the forkserver ignores
SIGINT itself only once its preloading is done, so an interrupt during that second of imports
printed a traceback. The handler is restored afterwards: processes forked from the server
(`compare`'s workers too) start with the usual one.
"""

import signal

_previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
import planner.solve  # noqa: E402, F401

signal.signal(signal.SIGINT, _previous)
