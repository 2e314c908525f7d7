# PID 1 of a lab node's PID namespace.
#
# Every daemon of the node (sshd, keepalived, postgres, the services, the sync
# loop) runs in this PID namespace, so when one of them is orphaned it is
# reparented here, and this loop reaps it. (The machine's own PID 1 may not
# reap orphans; without this they would pile up as zombies.) When this process
# dies the kernel kills everything else in the namespace, which is how
# `pairshift lab down` makes sure no process of the node survives.
import os
import signal
import time

# A PID-namespace init ignores signals it has no handler for; TERM and INT
# end the node (the kernel then kills the rest of the namespace).
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGINT, lambda *_: os._exit(0))

with open("/run/app/holder.ready", "w") as f:
    f.write("ok\n")

while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
    except InterruptedError:
        pass
