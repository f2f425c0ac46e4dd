"""R5.3: one KerasTuner search on a chief and N local workers (``make tune WORKERS=N``).

KerasTuner's distributed mode does the work: the chief holds the oracle and serves
it over gRPC, and each worker asks it for trials to run. This module only starts
the processes on 127.0.0.1 with KerasTuner's environment variables, gives each
worker its share of the cores, prefixes their output, and stops them together.
Across machines, run the same command with those variables by hand (docs/tune.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from recipe_keras.errors import NoChief

__all__ = [
    "CHIEF_GRACE_SECONDS",
    "NoChief",
    "free_port",
    "launch",
    "reserve_port",
    "role",
    "shares",
    "wait_for_chief",
]

# After the last worker ends, the chief (told so at once) exports the best model and
# writes the results; past this, it is stopped.
CHIEF_GRACE_SECONDS = 180


def role() -> str:
    """This process's part in a distributed search: "" alone, "chief", or a worker's id.

    Read from the environment KerasTuner itself reads (``KERASTUNER_ORACLE_IP`` set
    means distributed; a ``KERASTUNER_TUNER_ID`` containing "chief" is the chief).
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return ""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "chief" if "chief" in tuner_id else tuner_id


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reserve_port() -> tuple[socket.socket | None, int]:
    """A port on 127.0.0.1 kept for the chief: (the socket that holds it, the port).

    The socket is bound with SO_REUSEPORT and never listens: the chief's gRPC server
    (which sets SO_REUSEPORT too) binds the same port beside it, while a process that
    does not ask to share it cannot take it in the seconds before the chief starts.
    Where SO_REUSEPORT is missing (Windows), the port is only chosen: (None, port).
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        return None, free_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def wait_for_chief(seconds: float, say=print) -> None:
    """Block until the chief's oracle answers (gRPC), saying so every 15 s; ``NoChief``
    after ``seconds``. KerasTuner's own client would wait for it for days, silently."""
    import grpc  # ships with keras-tuner

    where = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    name = os.environ.get("KERASTUNER_TUNER_ID", "worker")
    channel = grpc.insecure_channel(where)
    end = time.monotonic() + seconds
    try:
        while True:
            left = end - time.monotonic()
            try:
                grpc.channel_ready_future(channel).result(timeout=max(0.1, min(15.0, left)))
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() >= end:
                    raise NoChief(
                        f"{name}: no chief answered at {where} within {seconds:g} s; start "
                        "the chief first (KERASTUNER_TUNER_ID=chief, same address), check "
                        "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, or raise "
                        "tune.wait_for_chief"
                    ) from None
                say(f"{name}: waiting for the chief at {where}...", flush=True)
    finally:
        channel.close()


def shares(cores: Sequence[int], workers: int) -> list[list[int]]:
    """Each worker's cores: equal, disjoint shares; workers share cores round-robin
    when there are more workers than cores."""
    if workers <= len(cores):
        size = len(cores) // workers
        return [list(cores[i * size : (i + 1) * size]) for i in range(workers)]
    return [[cores[i % len(cores)]] for i in range(workers)]


def _thread_env(threads: int) -> dict[str, str]:
    """Thread-pool sizes each backend reads at start-up: TensorFlow, XLA (JAX), OpenMP (torch)."""
    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(threads),
    }
    if threads == 1:
        xla = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{xla} --xla_cpu_multi_thread_eigen=false".strip()
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM if the launcher is killed (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _relay(name: str, stream, out=sys.stdout) -> None:
    """Print a child's lines as ``tuner0 | ...`` (its own ``tuner0:`` lines as they are)."""
    for line in stream:
        text = line if line.lstrip().startswith(f"{name}:") else f"{name:>6} | {line}"
        out.write(text)
        out.flush()


def _ended(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"


def launch(
    command: Sequence[str],
    workers: int,
    cores: Sequence[int] | None = None,
) -> int:
    """Run ``command`` (a ``recipe-keras tune`` command line) as chief plus ``workers``.

    Returns the chief's exit status once it has written the results; 1 when a worker
    failed (the search is saved: the same command finishes it, re-running only the
    interrupted trials); 130 when interrupted.
    """
    if workers < 1:
        raise ValueError(f"workers = {workers!r}: a distributed search needs 1 or more workers")
    if cores is None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cores = cores or list(range(os.cpu_count() or 1))
    held, port = reserve_port()
    base = {
        **os.environ,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    plan = [("chief", None)]
    plan += [(f"tuner{i}", share) for i, share in enumerate(shares(cores, workers))]
    shown = ", ".join(f"{name} on cores {share}" for name, share in plan[1:])
    line = f"recipe-keras tune: a chief on 127.0.0.1:{port} and {workers} workers ({shown})"
    print(line, flush=True)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, share in plan:
            env = {**base, "KERASTUNER_TUNER_ID": name}
            env |= _thread_env(1 if share is None else len(share))
            procs[name] = subprocess.Popen(
                list(command),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            if share is not None and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(procs[name].pid, share)
    except BaseException:  # none left running without its launcher
        _stop(procs)
        if held is not None:
            held.close()
        raise
    relays = [
        threading.Thread(target=_relay, args=(name, proc.stdout), daemon=True)
        for name, proc in procs.items()
    ]
    for relay in relays:
        relay.start()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _supervise(procs)
    except KeyboardInterrupt:
        print("recipe-keras tune: interrupted; stopping the chief and workers", flush=True)
        _stop(procs)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(procs)
        for relay in relays:
            relay.join(timeout=5)
        if held is not None:
            held.close()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _supervise(procs: dict[str, subprocess.Popen]) -> int:
    chief = procs["chief"]
    workers = {name: p for name, p in procs.items() if name != "chief"}
    failed: list[str] = []
    reported: set[str] = set()
    workers_done = None
    while True:
        time.sleep(0.2)
        for name, proc in workers.items():
            code = proc.poll()
            if code is not None and name not in reported:
                reported.add(name)
                if code != 0:
                    failed.append(name)
                    print(
                        f"recipe-keras tune: {name} stopped ({_ended(code)}); the others go on, "
                        "and its unfinished trial runs again on the next `make tune`",
                        flush=True,
                    )
        code = chief.poll()
        if code is not None:
            if len(reported) < len(workers):
                print(f"recipe-keras tune: the chief stopped ({_ended(code)})", flush=True)
                return code or 1
            if failed:
                break
            return code
        if len(reported) == len(workers):
            # A dead worker's trial stays open in the chief's oracle: it waits for it forever.
            if failed:
                break
            if workers_done is None and hasattr(signal, "SIGUSR1"):
                # All trials ended: spare the chief KerasTuner's next 20 s poll (tune.py).
                chief.send_signal(signal.SIGUSR1)
            workers_done = workers_done or time.monotonic()
            if time.monotonic() - workers_done > CHIEF_GRACE_SECONDS:
                print(
                    f"recipe-keras tune: the chief had not finished {CHIEF_GRACE_SECONDS} s "
                    "after the last worker; stopped it (run the same command again)",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    print(
        f"recipe-keras tune: {', '.join(failed)} failed; the search is saved: "
        "run the same command again to finish it (finished trials are kept)",
        file=sys.stderr,
        flush=True,
    )
    return 1


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every child still running, then SIGKILL what is left after 10 s."""
    alive = [p for p in procs.values() if p.poll() is None]
    for proc in alive:
        proc.terminate()
    end = time.monotonic() + 10
    for proc in alive:
        try:
            proc.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
