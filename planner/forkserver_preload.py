"""What the MIP children's forkserver preloads (`solve.forkserver_context`): `planner.solve`.

Ctrl-C in a terminal reaches every process of the foreground group. The solving process
handles it (it kills its MIP children and keeps what they reported). The forkserver is started
with SIGINT blocked (`solve.start_forkserver`), because it ignores SIGINT itself only once its
imports are done and an interrupt before that printed a traceback. The processes it forks
start with SIGINT ignored too: a MIP child leaves Ctrl-C to its parent, and `compare`'s
workers take it back while they solve (`compare._solve_in_worker`). A process given Python's
handler from birth died on Ctrl-C while it read its start data, and its parent got a
BrokenPipeError (`planner compare` on bench large, Ctrl-C 4 s in).
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)  # when the server was started some other way
# `solve.start_forkserver` starts the server with SIGINT blocked; ignored now, a Ctrl-C still
# pending is dropped, and the processes forked from here can take it back
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
import planner.solve  # noqa: E402, F401
