#!/usr/bin/env python3
"""Measure how fast the VIP of a running lab moves from node a to node b.

    python3 lab/bench/vip-move.py NAME stop|fault|priority [runs]

stop      svc stop keepalived on a (keepalived sends a priority-0 advert)
fault     write 1 into a's fault file (track_file weight 0 -> FAULT)
priority  raise b's priority above a's and reload b (SIGHUP)

For each run prints the ms from the action until b holds the VIP and the ms
during which no node held it, then puts the lab back (VIP on a). The VIP is
polled with `ip -n` as fast as it goes (~2-5 ms a poll).
"""
import json
import subprocess
import sys
import time

name, how = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
state = json.load(open(f"/var/lib/pairshift-lab/{name}/state.json"))
idx = state["subnetIndex"]
vip = f"198.{18 + idx // 256}.{idx % 256}.100"
TOOLS = "/opt/pairshift-node/bin"


def node(n, script):
    pid = str(state["holders"][n])
    return subprocess.Popen(["nsenter", "-t", pid, "-m", "-n", "-p", "-i", "-u", "--", "sh", "-c", script],
                            stdout=subprocess.DEVNULL)


def has(n):
    out = subprocess.run(["ip", "-n", f"{name}-{n}", "-o", "-4", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True).stdout
    return f" {vip}/" in out


def wait_for(n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if has(n):
            return True
        time.sleep(0.02)
    return False


ACT = {
    "stop": ("a", f"{TOOLS}/svc stop keepalived", f"{TOOLS}/svc start keepalived"),
    "fault": ("a", "echo 1 > /etc/keepalived/fault", "echo 0 > /etc/keepalived/fault"),
    "priority": ("b", f"sed -i 's/priority 100$/priority 200/' /etc/keepalived/keepalived.conf && {TOOLS}/svc reload keepalived",
                 f"sed -i 's/priority 200$/priority 100/' /etc/keepalived/keepalived.conf && {TOOLS}/svc reload keepalived"),
}
where, act, undo = ACT[how]
for i in range(runs):
    if not wait_for("a"):
        sys.exit("the VIP is not on a")
    time.sleep(1)
    t0 = time.time()
    p = node(where, act)
    gap_start = None
    while True:
        t = time.time()
        if has("b"):
            break
        if gap_start is None and not has("a"):
            gap_start = t
        if t - t0 > 15:
            sys.exit("the VIP did not move")
    t1 = time.time()
    p.wait()
    gap = (t1 - gap_start) * 1000 if gap_start else 0
    print(f"{how}: b holds the VIP {1000 * (t1 - t0):.0f} ms after the action; no holder for {gap:.0f} ms")
    node(where, undo).wait()
