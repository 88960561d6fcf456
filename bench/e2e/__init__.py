"""End-to-end benchmark of the ingress against a real local Kafka (``make bench``).

What it measures, for each target (the ingress, the HTTP ceiling, the hand-written
FastAPI service, the Go peer on one core) and each body (receive-message ~1 KB,
message-status, a 40-message finish-attendance, all from ``Generator(seed=1)``):

* max webhooks/s: closed-loop ``wrk`` (``-t1 -c64``) POSTing the body;
* p50/p99 latency at 25 %, 50 % and 75 % of that max, from an open-loop client of this
  package (``openloop``): request *i* is due at ``start + i/rate``, latency runs from the
  due time (no coordinated omission), and the client reports whether it kept up;
* CPU microseconds per request: the server's utime + stime (``/proc/<pid>/stat``,
  summed over its process tree, so every thread and every ``--workers`` child counts)
  over the max run, divided by the requests wrk completed in it; on a shared machine
  it is steadier than webhooks/s;
* peak RSS of the server (``VmHWM``), every non-2xx answer and socket error, and
  (for the Kafka-backed targets) that every 2xx is on the topic: the end offsets grow
  by at least the number of 2xx answers.

Every row is measured in each of ``--rounds`` rounds (3 by default), the targets'
order reversed every other round, and reported as the median of its rounds with each
round's own figures beside it (``rows``): on this shared machine one
reading per target left the ratios to the host's phase of the moment.

The server runs alone on CPU 0 (``taskset -c 0``), the load generator on CPU 1. The
broker is this run's own (``127.0.0.1:19092``, data in ``.kafka-bench``, deleted at
the end) and is not pinned: on a 2-core machine it shares both cores, as it would
share a node with the ingress in a small deployment.

    .venv/bin/python -m bench.e2e            # full run, 3 rounds, ~30 minutes
    .venv/bin/python -m bench.e2e --rounds 1 # one round, ~10 minutes
    .venv/bin/python -m bench.e2e --quick    # smoke run, one round, ~2.5 minutes
    .venv/bin/python -m bench.e2e --bodies receive --targets ingress --profile

Writes ``bench/RESULTS.md`` and ``bench/out/e2e.json``; never fails on a missed target
(exit 1 only when the harness itself cannot run, 3 when a run had errors and
``--strict`` is given).

The modules, in the order a run uses them: ``settings`` (CPUs, bodies, targets,
durations), ``broker`` (this run's Kafka, end offsets), ``gopeer`` (the Go peer's binary,
built once), ``targets`` (the servers, started and stopped), ``wrk`` (the closed-loop
maximum), ``openloop`` (the open-loop client), ``procfs`` (CPU time, steal and peak RSS
from ``/proc``), ``measure`` (one row), ``pyspy`` (``--profile``), ``rows`` (medians over
the rounds), ``report`` (the tables and bench/RESULTS.md) and ``__main__`` (the command
line).
"""
