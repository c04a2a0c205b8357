"""Workers: processes that take trials from the shared study until it holds the requested number.

`--workers N` runs N of them on this machine: the command's own process is worker 0 and N − 1
more are started as `python -m netlens.optimize.workers JOB`, each with its share of the CPU
threads (torch's intra-op threads divided between them, so N workers do not oversubscribe the
cores). Every worker, here or on another machine, does the same loop:

    claim the study's lock → count finished + running trials → stop if the study is full,
    else create a trial → let go of the lock → train it → tell Optuna the result.

Finished trials are written to the storage the moment they end, so interrupting loses only the
trials in flight, which are marked failed and run again by the next `netlens optimize`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_FAILS_IN_A_ROW = 3


@dataclass
class Job:
    design: str
    settings: dict
    worker: int = 0
    threads: int = 1
    deadline: float | None = None        # epoch seconds after which no new trial starts
    parent: int | None = None            # stop when this process is gone (child workers)
    kind: str = "optimize"               # optimize | tolerance (netlens.tolerance.engine.work)


@dataclass
class Report:
    worker: int
    trials: list[int] = field(default_factory=list)     # trial numbers this worker ran
    error: str | None = None
    interrupted: bool = False


def cpu_threads() -> int:
    """Threads this machine gives us: the CPU affinity, capped by OMP_NUM_THREADS when set."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(n, int(cap))) if cap.isdigit() and int(cap) > 0 else n


def take_trials(job: Job, study, plan, objective, report: Report, claimed: dict,
                full: Callable[[Any], bool], noun: str = "trials",
                stopped: Callable[[], bool] = lambda: False) -> None:
    """The loop every worker runs (optimize's and tolerance's): under the study's claim, stop
    when `full(study)`, else start one trial and let go of the claim once it has started; stop
    at the deadline, when the parent is gone, or after MAX_FAILS_IN_A_ROW failures in a row.
    `claimed["running"]` is the set of trials RUNNING when this worker took the claim, while it
    holds it (a trial running besides them is this worker's: no other can start one meanwhile —
    a new trial for optimize, an enqueued one taken for tolerance), None otherwise. `stopped()` true raises
    KeyboardInterrupt: an interrupt some code swallowed still stops the worker."""
    import optuna

    from netlens.optimize.storage import claim, fail_stale

    last: list = []
    fails = 0
    while True:
        if stopped():
            raise KeyboardInterrupt
        if job.deadline is not None and time.time() >= job.deadline:
            return
        if job.parent is not None and os.getppid() != job.parent:
            return
        with claim(plan.place, plan.study) as release:
            fail_stale(study)
            if full(study):
                return
            # While this worker holds the claim, a new trial can only be its own (with a
            # storage lock: SQLite, PostgreSQL, MySQL).
            claimed["running"] = {t.number for t in study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}

            def started(release=release) -> None:
                claimed["running"] = None
                release()

            objective.on_start = started
            study.optimize(objective, n_trials=1, catch=(Exception,),
                           callbacks=[lambda _s, t: last.append(t)])
            claimed["running"] = None
        if last and last[-1].state == optuna.trial.TrialState.FAIL:
            fails += 1
            if fails >= MAX_FAILS_IN_A_ROW:
                reason = last[-1].user_attrs.get("failed_reason") or "see --debug"
                report.error = f"{fails} {noun} in a row failed; the last: {reason}"
                return
        else:
            fails = 0


@dataclass
class Session:
    """What a worker takes trials with (built by `work`'s `setup`)."""
    study: Any
    plan: Any
    objective: Any
    full: Callable[[Any], bool]          # the study holds all it should: stop


def serve(job: Job, setup: Callable[[Job, Report, dict], Session], report: Report | None = None,
          noun: str = "trials") -> Report:
    """The worker process's life, shared by optimize and tolerance: torch's threads set to its
    share, Ctrl-C caught, `setup(job, report, state)` building the study and objective (it puts
    the storage in `state["storage"]` as soon as it is open), then trials until `full`, the
    deadline or the parent's end. A KeyboardInterrupt propagates after this worker's trials in
    flight are marked failed."""
    import optuna
    import torch
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    before = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    report = report if report is not None else Report(job.worker)
    state: dict[str, Any] = {"storage": None, "study": None}
    claimed: dict[str, set[int] | None] = {"running": None}   # see take_trials
    STOP.clear()
    old_handler = _install_handler()
    try:
        session = setup(job, report, state)
        state["study"] = session.study
        take_trials(job, session.study, session.plan, session.objective, report, claimed,
                    full=session.full, noun=noun, stopped=STOP.is_set)
    except BaseException as e:
        # An interrupt can land anywhere, Optuna's own bookkeeping included, which may then fail
        # with an error of its own (UnboundLocalError, UpdateFinishedTrialError): once Ctrl-C was
        # pressed, whatever ends the loop is the interrupt.
        if not (isinstance(e, KeyboardInterrupt) or STOP.is_set()):
            if isinstance(e, SQLAlchemyError):   # the database went away: stop, keep the study
                report.error = f"the storage failed: {e.__class__.__name__}: {str(e).splitlines()[0]}"
                return report
            raise
        stop_orphan_heartbeats()
        if state["study"] is not None:
            # if the session broke mid-write, the heartbeat fails the trial later instead
            with suppress(Exception):
                fail_in_flight(state["study"], state["storage"], report.trials, claimed["running"])
        raise KeyboardInterrupt from None
    finally:
        torch.set_num_threads(before)
        _restore_handler(old_handler)
    return report


def work(job: Job, report: Report | None = None) -> Report:
    """Run optimize trials until the study is full, the deadline passes, or the parent is gone;
    the trial numbers run go into `report` as they start (see `serve`)."""
    return serve(job, _optimize_session, report)


def _optimize_session(job: Job, report: Report, state: dict) -> Session:
    import optuna

    from netlens.optimize.objective import Objective
    from netlens.optimize.settings import Settings
    from netlens.optimize.storage import open_storage
    from netlens.optimize.study import Plan, counted

    settings = Settings.from_json(job.settings)
    plan = Plan.build(job.design, settings)
    storage = state["storage"] = open_storage(plan.place)
    existing = len(optuna.load_study(study_name=plan.study, storage=storage).get_trials(deepcopy=False))
    study = optuna.load_study(study_name=plan.study, storage=storage, pruner=plan.pruner(),
                              sampler=plan.sampler(plan.seed(job.worker, existing)))
    objective = Objective(plan.path, plan.space, plan.merits, plan.constraints, plan.overrides,
                          settings.pruner, settings.prune_aberrations, ran=report.trials)
    return Session(study, plan, objective, full=lambda s: counted(s) >= settings.trials)


#: Set by the first Ctrl-C this process gets (see `work`).
STOP = threading.Event()


def _on_interrupt(signum, frame) -> None:
    """The first Ctrl-C raises KeyboardInterrupt and sets STOP; later ones only set it (the trial
    in flight is being recorded as failed and must not be cut short)."""
    first = not STOP.is_set()
    STOP.set()
    if first:
        raise KeyboardInterrupt


def _install_handler():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _on_interrupt)


def _restore_handler(old) -> None:
    if old is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, old)


def fail_in_flight(study, storage, ran: list[int], running_before: set[int] | None) -> None:
    """Mark this worker's trials still RUNNING as failed by the interrupt.

    Optuna fails a trial whose objective raises, but an interrupt that lands in its own
    bookkeeping (sampling a new trial's parameters, reporting a value, writing the result) leaves
    the trial RUNNING until the heartbeat expires. Ours are the trials the objective started
    (`ran`) and, if the interrupt came while this worker held the claim (`running_before` set),
    any trial running besides those that ran when it took the claim — no other worker can start
    one then (optimize creates it; tolerance takes an enqueued one). A second interrupt must not cut
    this short, so SIGINT is ignored here. (`_trial_id` is how Optuna's own fail_stale_trials
    addresses a trial.)"""
    from optuna.trial import TrialState

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number in ran or (running_before is not None and t.number not in running_before):
            try:
                storage.set_trial_user_attr(t._trial_id, "failed_reason", "interrupted")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except Exception:        # it finished meanwhile (UpdateFinishedTrialError): keep it
                continue


def stop_orphan_heartbeats() -> int:
    """Stop Optuna heartbeat threads left running by an interrupt; returns how many.

    Optuna starts a trial's heartbeat thread (not a daemon) in the `__enter__` of a `with` block
    that stops it on exit; an interrupt that lands after the thread started and before the block
    is entered leaves it beating forever, and the process then never exits (seen as a `netlens
    tolerance` hanging after Ctrl-C). Its trial is being failed here, so its heartbeat must end.
    A thread the interrupt caught inside `Thread.start()` may not report itself alive yet (it is
    started but has not signalled it), so every heartbeat thread listed is told to stop, alive or
    not: telling a finished one is harmless."""
    from optuna.storages._heartbeat import HeartbeatThread

    stopped = []
    for t in threading.enumerate():       # running threads and those still starting
        if getattr(t, "_target", None) is HeartbeatThread._record_heartbeat:
            t._args[2].set()            # (trial_id, heartbeat, stop_event): the thread returns
            stopped.append(t)
    for t in stopped:                   # a beat in progress finishes its write first
        with suppress(RuntimeError):    # not started yet: it will see the event set
            t.join(timeout=10)
    return len(stopped)


# -- worker processes --------------------------------------------------------------------------
def spawn(job: Job) -> subprocess.Popen:
    """Start a worker process. It gets its own session so a terminal's Ctrl-C reaches only the
    command, which passes one interrupt on (two would cut short the write of a failed trial)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(job.threads), MKL_NUM_THREADS=str(job.threads))
    return subprocess.Popen([sys.executable, "-m", "netlens.optimize.workers", json.dumps(asdict(job))],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True, text=True)


def collect(proc: subprocess.Popen, worker: int) -> Report:
    out, _ = proc.communicate()
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    if lines:
        return Report(**json.loads(lines[-1]))
    return Report(worker, error=f"worker {worker} exited with code {proc.returncode}")


def interrupt(procs: list[subprocess.Popen], wait_s: float = 30.0) -> None:
    """Pass an interrupt on to the worker processes and wait for them to record their state."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    end = time.time() + wait_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()


def main() -> None:
    # An interrupt passed on by the command must raise here even if this process was started
    # with SIGINT ignored (as a shell does for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job = Job(**json.loads(sys.argv[1]))
    report = Report(job.worker)
    code = 0
    try:
        if job.kind == "tolerance":
            from netlens.tolerance.engine import work as tolerance_work

            tolerance_work(job, report)
        else:
            work(job, report)
    except KeyboardInterrupt:
        report.interrupted, code = True, 130
    except Exception as e:              # reported to the parent, which exits 3
        report.error, code = f"{e.__class__.__name__}: {e}", 3
    sys.stdout.write(json.dumps(asdict(report)) + "\n")
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
