"""What the MIP children's forkserver preloads (`solve.forkserver_context`): `planner.solve`.

Ctrl-C in a terminal reaches every process of the foreground group. The solving process
handles it (it kills its MIP children and keeps what they reported). The forkserver is started
with SIGINT ignored (`solve.start_forkserver`), because it ignores SIGINT itself only once its
imports are done and an interrupt before that printed a traceback; this module then gives it
Python's handler, which the processes it forks (`compare`'s workers) start with.
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)  # when the server was started some other way
import planner.solve  # noqa: E402, F401

signal.signal(signal.SIGINT, signal.default_int_handler)
