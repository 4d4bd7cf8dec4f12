"""Regression tests for the attacks of the sandbox review (issue 7), run the way the attacker ran them.

Each test asserts that the trial is contained (nothing outside its workspace changed:
secret, store, cache, installed package, host files), that the outcome is recorded with
the right status, and that the solution is not rewarded. The harness runs as root here
and in CI, with namespaces available, as in the review; tests that need the isolated
sandbox skip (saying why) where it is unavailable.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import interpgym
from interpgym.core.cache import home
from interpgym.core.errors import UserError
from interpgym.harness import sandbox_init
from interpgym.harness.campaign import record_trial
from interpgym.harness.external import campaign_lock, init_workspace, score_workspace
from interpgym.harness.records import Budgets, Proposal
from interpgym.harness.sandbox import Limits, _parse_report, namespaces_available
from interpgym.harness.scratch import scratch_root, scratch_tree
from interpgym.harness.secret import harness_secret, private_dir, private_seed
from interpgym.harness.store import RunStore
from interpgym.harness.task import InvalidSolution, Score
from interpgym.harness.tasks import demo_mean
from interpgym.harness.trial import load_artifact, run_trial

needs_namespaces = pytest.mark.skipif(not namespaces_available(), reason="the isolated sandbox is unavailable here")

WRITE_ZERO = textwrap.dedent("""
    import numpy as np
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(16, dtype=np.float32)}, os.environ["INTERPGYM_ARTIFACT_DIR"] + "/answer.safetensors")
""")


def trial(task, *code: str, timeout_s: float = 60.0, memory_mb: int = 1024, **kwargs):
    source = "import os, sys\n" + "\n".join(textwrap.dedent(part) for part in code)
    return run_trial(task, files={"solution.py": source}, params=task.default_params, seed=0,
                     limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb), **kwargs)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def host_state(*extra: Path) -> dict[str, str]:
    """Hashes of everything a trial must not change: secret, store, the scorer's source, private data, `extra`."""
    secret_file = home() / "harness" / "secret"
    package = Path(interpgym.__file__).resolve().parent
    watched = [secret_file, home() / "runs.db", package / "harness" / "tasks" / "demo_mean.py",
               package / "harness" / "trial.py",
               private_dir(demo_mean.ID, demo_mean.VERSION, demo_mean._prepare_private) / "targets.safetensors", *extra]
    return {str(p): sha(p) for p in watched}


def assert_contained(outcome, before: dict[str, str], starting_val: float, *extra: Path) -> None:
    assert host_state(*extra) == before, "a file outside the workspace changed"
    val = outcome.scores.get("val")
    assert val is None or val.value <= starting_val + 1e-12


# 1. Mounts can be undone ------------------------------------------------------------------

UNDO_MOUNTS = """
    import ctypes, subprocess
    escaped = []
    def attempt(what, fn):
        try:
            fn(); escaped.append(what)
        except Exception:
            pass
    def run(*argv):
        r = subprocess.run(argv, capture_output=True)
        if r.returncode != 0:
            raise OSError(r.stderr.decode())
    home_dir, package, marker = sys.argv[1:4] if len(sys.argv) > 3 else (HOME, PACKAGE, MARKER)
    attempt("umount home", lambda: run("umount", "-l", home_dir))
    attempt("remount / rw", lambda: run("mount", "-o", "remount,rw", "/"))
    attempt("remount package rw", lambda: run("mount", "-o", "remount,bind,rw", package))
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
    def nested_userns():
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        run("umount", "-l", package)
    attempt("nested user namespace", nested_userns)
    attempt("read the secret", lambda: open(home_dir + "/harness/secret").read())
    attempt("patch the scorer", lambda: open(package + "/harness/tasks/demo_mean.py", "a").write("#x"))
    attempt("write the store", lambda: open(home_dir + "/runs.db", "ab").write(b"x"))
    attempt("write a host file", lambda: open(marker, "w").write("pwned"))
    attempt("write core_pattern", lambda: open("/proc/sys/kernel/core_pattern", "w"))
    if escaped:
        print("ESCAPED:", escaped, file=sys.stderr); sys.exit(3)
"""


@needs_namespaces
def test_mounts_cannot_be_undone_and_nothing_outside_changes(demo, starting_val, tmp_path):
    marker = tmp_path / "host-marker.txt"
    marker.write_text("untouched")
    RunStore()  # the store exists on the host, as in a campaign
    before = host_state(marker)
    package = Path(interpgym.__file__).resolve().parent
    header = f"HOME, PACKAGE, MARKER = {str(home())!r}, {str(package)!r}, {str(marker)!r}\n"
    outcome = trial(demo, header + textwrap.dedent(UNDO_MOUNTS), WRITE_ZERO)
    assert outcome.status == "ok", outcome.error  # exit 3 (any escape) would be a crash
    assert marker.read_text() == "untouched"
    assert_contained(outcome, before, starting_val, marker)


@needs_namespaces
def test_solution_has_no_capabilities_and_a_foreign_uid(demo, starting_val):
    outcome = trial(demo, """
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        caps = {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        problems = [k for k, v in caps.items() if v]
        if status["NoNewPrivs"].strip() != "1": problems.append("no_new_privs unset")
        if os.geteuid() == 0 and os.path.exists("/proc/1/cmdline") and open("/proc/1/cmdline").read(): pass
        if problems:
            print("PRIVILEGED:", problems, file=sys.stderr); sys.exit(3)
        print("uid", os.getuid())
    """, WRITE_ZERO)
    assert outcome.status == "ok", outcome.error
    if os.geteuid() == 0:  # as root, trials run as a fresh uid that owns nothing on the host
        uid = int(outcome.sandbox.stdout_tail.split("uid", 1)[1].split()[0])
        assert uid >= 1_000_000


# 2. Other trials are readable -------------------------------------------------------------

@needs_namespaces
def test_a_concurrent_trials_workspace_is_invisible(demo, starting_val):
    slow = threading.Thread(target=trial, args=(demo, WRITE_ZERO, "import time\ntime.sleep(8)"), daemon=True)
    slow.start()
    deadline, victims = time.time() + 60, []
    while time.time() < deadline and not victims:
        victims = [str(p) for p in scratch_root().glob("trial-*/ws/artifact/answer.safetensors")]
        time.sleep(0.1)
    assert victims, "the concurrent trial never wrote its artifact"
    outcome = trial(demo, f"""
        import glob, shutil
        found = []
        for path in {victims!r} + glob.glob("/tmp/**/answer.safetensors", recursive=True):
            try:
                shutil.copy(path, os.environ["INTERPGYM_ARTIFACT_DIR"] + "/answer.safetensors"); found.append(path)
            except OSError:
                pass
        if found:
            print("COPIED", found, file=sys.stderr); sys.exit(3)
    """, WRITE_ZERO)
    slow.join()
    assert outcome.status == "ok", outcome.error
    assert_not_rewarded = outcome.scores["val"].value
    assert assert_not_rewarded == pytest.approx(starting_val)


def test_scratch_trees_are_private(demo):
    root = scratch_root()
    assert os.stat(root).st_mode & 0o077 == 0 and os.stat(root).st_uid == os.geteuid()
    with scratch_tree() as tree:
        assert os.stat(tree).st_mode & 0o077 == 0


# 3. Unix sockets reach the host -----------------------------------------------------------

@needs_namespaces
def test_unix_sockets_do_not_reach_the_host(demo, starting_val, tmp_path):
    path_server = socket.socket(socket.AF_UNIX)
    path_server.bind(str(tmp_path / "host.sock"))
    os.chmod(tmp_path / "host.sock", 0o777)
    path_server.listen(1)
    abstract_name = f"\0interpgym-test-{os.getpid()}"
    abstract_server = socket.socket(socket.AF_UNIX)
    abstract_server.bind(abstract_name)
    abstract_server.listen(1)
    try:
        outcome = trial(demo, f"""
            import socket
            reached = []
            for address in ({str(tmp_path / "host.sock")!r}, {abstract_name!r}, "/run/dbus/system_bus_socket"):
                try:
                    s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(address); s.sendall(b"hello")
                    reached.append(address)
                except OSError:
                    pass
            if reached:
                print("REACHED", reached, file=sys.stderr); sys.exit(3)
        """, WRITE_ZERO)
        for server in (path_server, abstract_server):
            server.settimeout(0.2)
            with pytest.raises(OSError):
                server.accept()  # nobody connected
    finally:
        path_server.close()
        abstract_server.close()
    assert outcome.status == "ok", outcome.error


# 4. The result channel can be forged ------------------------------------------------------

@needs_namespaces
def test_the_result_channel_cannot_be_forged(demo, starting_val):
    outcome = trial(demo, WRITE_ZERO, """
        import glob
        blob = bytearray(700 * 1024 * 1024)  # a peak the report must show
        for fd in range(3, 256):
            try:
                os.write(fd, b"0 1")
            except OSError:
                pass
        for path in glob.glob("/proc/*/fd/*"):
            try:
                with open(path, "wb") as f:
                    f.write(b"0 1")
            except OSError:
                pass
        sys.exit(3)
    """, memory_mb=1500)
    assert outcome.status == "crash" and "exit code 3" in outcome.error, outcome.error
    assert outcome.peak_mem_mb is not None and outcome.peak_mem_mb > 600


@pytest.mark.parametrize("raw", [b"", b"garbage", b"0 1 2", b"0", b"00000000000000000000 5", b"0 -5", b"\xff\xfe",
                                 b"99999 1", b"0 1\n0 1"])
def test_a_malformed_report_is_never_trusted(raw):
    assert _parse_report(raw) is None


# 5. Work outside the trial's limits -------------------------------------------------------

def test_many_sparse_files_cost_the_harness_nothing(demo, starting_val):
    start = time.perf_counter()
    outcome = trial(demo, WRITE_ZERO, """
        for i in range(2000):
            for folder in ("tmp", "artifact", "."):
                try:
                    with open(f"{folder}/sparse-{i}.bin", "wb") as f:
                        f.truncate(200 << 20)
                except OSError:
                    pass
    """)
    harness_side = sum(v for k, v in outcome.timings.items() if k != "sandbox")
    assert outcome.status == "invalid", outcome.error
    assert ("more than" in outcome.error) or ("read-only" in outcome.error)
    assert harness_side < 10, outcome.timings  # stat-only checks: no file is read
    assert time.perf_counter() - start < 120


def test_a_huge_claimed_sae_width_is_refused_before_allocating(tmp_path):
    import torch
    from safetensors.torch import save_file

    from interpgym.harness.tasks.sae_common import load_checked_sae

    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 64, "d_sae": 400_000_000, "k": 5}))
    save_file({"W_enc": torch.zeros(1, 1)}, str(tmp_path / "sae_weights.safetensors"))
    artifact = load_artifact(tmp_path)
    peak_before = _peak_rss_mb()
    with pytest.raises(InvalidSolution, match="width"):
        load_checked_sae(artifact, 64, 1024)
    assert _peak_rss_mb() - peak_before < 200


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_json_artifacts_are_capped_and_finite(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "a.json").write_text("[" + ",".join(["[]"] * 600_000) + "]")  # ~1.8 MB of tiny lists
    with pytest.raises(InvalidSolution, match="exceeds"):
        load_artifact(big)
    nan = tmp_path / "nan"
    nan.mkdir()
    (nan / "a.json").write_text('{"x": NaN, "y": Infinity}')
    with pytest.raises(InvalidSolution, match="not a finite number"):
        load_artifact(nan)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(100):
        (many / f"{i}.json").write_text("{}")
    with pytest.raises(InvalidSolution, match="more than"):
        load_artifact(many)


def test_a_workspace_link_to_a_host_file_is_not_read(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    init_workspace("demo/mean", ws, kind="ai", name="attacker", store=RunStore())
    (ws / "solution.py").unlink()
    (ws / "solution.py").symlink_to("/dev/zero")  # read whole, this never ends
    start = time.perf_counter()
    with pytest.raises(UserError, match="regular file"):
        score_workspace(ws)
    assert time.perf_counter() - start < 5


# 6. Poison pills -------------------------------------------------------------------------

def test_overflowing_metrics_are_recorded_invalid(demo, starting_val):
    outcome = trial(demo, """
        import numpy as np
        from safetensors.numpy import save_file
        save_file({"w": np.full(16, 1e200, dtype=np.float64)}, os.environ["INTERPGYM_ARTIFACT_DIR"] + "/answer.safetensors")
    """)  # finite weights whose squared error overflows: the review's "float64 1e300" pill
    assert outcome.status == "invalid" and "not finite" in outcome.error, outcome.error


def test_non_finite_metrics_never_break_the_store(demo, tmp_path):
    with pytest.raises(InvalidSolution, match="not finite"):
        Score(value=1.0, metrics={"loss": float("inf")})
    store = RunStore(tmp_path / "runs.db")
    campaign = store.create_campaign(task="demo/mean", task_version="x", agent="a", agent_kind="ai", seed=0,
                                     budgets=Budgets(trials=2), harness_version="1")
    from interpgym.harness.records import TrialRecord

    store.add_trial(campaign, TrialRecord(n=1, status="ok", val_score=float("inf"), normalized=float("nan"),
                                          metrics={"x": float("-inf"), "nested": [1.0, float("nan")]}))
    (row,) = store.trials(campaign)
    assert row.val_score is None and row.normalized is None and row.metrics == {"x": None, "nested": [1.0, None]}


# 7. Two `task score` on one workspace -----------------------------------------------------

def test_one_campaign_is_scored_by_one_process_at_a_time(tmp_path):
    ws = tmp_path / "ws"
    campaign_id = init_workspace("demo/mean", ws, kind="ai", name="racer", store=RunStore())
    with campaign_lock(campaign_id):
        with pytest.raises(UserError, match="being scored or submitted by another process"):
            score_workspace(ws)
    assert RunStore().campaign(campaign_id).trials == []


# 8. Small things ------------------------------------------------------------------------

def test_a_killed_trials_scratch_tree_is_removed_by_the_next_trial(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from interpgym.harness.scratch import scratch_tree
        with scratch_tree() as tree:
            (tree / "big").write_bytes(b"x" * 1000)
            print(tree, flush=True)
            time.sleep(600)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(interpgym.__file__).resolve().parent.parent)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    tree = Path(child.stdout.readline().strip())
    assert tree.is_dir()
    with scratch_tree():
        assert tree.is_dir()  # its owner is alive: kept
    child.send_signal(signal.SIGKILL)
    child.wait()
    with scratch_tree():
        assert not tree.exists()  # its owner died: swept


def test_an_oversized_proposal_is_invalid_and_not_stored_whole(demo, tmp_path):
    huge = "# " + "x" * (40 << 20) + "\n"
    outcome = run_trial(demo, files={"solution.py": huge}, params=demo.default_params, seed=0)
    assert outcome.status == "invalid" and "KiB" in outcome.error and outcome.sandbox is None
    store = RunStore(tmp_path / "runs.db")
    campaign = store.create_campaign(task="demo/mean", task_version=demo.version, agent="a", agent_kind="ai",
                                     seed=0, budgets=Budgets(trials=2), harness_version="1")
    from interpgym.harness.campaign import BaselineScores

    record_trial(store, demo, campaign, 1, Proposal(files={"solution.py": huge}), outcome, 0.1,
                 BaselineScores(0.0, 0.0, 1.0, 1.0))
    assert (tmp_path / "runs.db").stat().st_size + sum(
        p.stat().st_size for p in tmp_path.glob("runs.db-*")) < 2 << 20


def test_an_edited_campaign_marker_is_refused(tmp_path):
    store = RunStore()
    victim = init_workspace("demo/mean", tmp_path / "victim", kind="human", name="alice", store=store)
    init_workspace("demo/mean", tmp_path / "attacker", kind="ai", name="mallory", store=store)
    marker = tmp_path / "attacker" / ".interpgym-campaign.json"
    content = json.loads(marker.read_text())
    marker.write_text(json.dumps({**content, "campaign_id": victim}))
    with pytest.raises(UserError, match="does not belong to campaign"):
        score_workspace(tmp_path / "attacker")
    # Copying the victim's own marker (token and all) into another directory fails too.
    (tmp_path / "attacker" / ".interpgym-campaign.json").write_text(
        (tmp_path / "victim" / ".interpgym-campaign.json").read_text())
    with pytest.raises(UserError, match="was created for"):
        score_workspace(tmp_path / "attacker")
    assert store.campaign(victim).trials == []


def test_private_seeds_have_256_bits_and_every_bit_counts():
    from interpgym.core.seeding import generator
    from interpgym.harness.tasks.sae_toy import toy_config
    from interpgym.subjects.toy_superposition import ToyConfig, feature_directions

    harness_secret()
    assert private_seed("a").bit_length() > 200 and private_seed("a") != private_seed("b")
    assert toy_config().seed.bit_length() > 200
    import torch

    base = toy_config().seed
    flipped = base ^ (1 << 200)  # differs only far above any 64-bit seed
    a = feature_directions(ToyConfig(seed=base))
    b = feature_directions(ToyConfig(seed=flipped))
    assert not torch.equal(a, b)
    assert torch.equal(torch.randn(4, generator=generator(base)), torch.randn(4, generator=generator(base)))
    assert torch.equal(torch.randn(4, generator=generator(7)), torch.randn(4, generator=torch.Generator().manual_seed(7)))


def test_seccomp_program_is_well_formed():
    for machine in ("x86_64", "aarch64"):
        program = sandbox_init.seccomp_program(machine)
        assert program is not None and len(program) % 8 == 0 and len(program) // 8 < 256
    assert sandbox_init.seccomp_program("sparc") is None


# The same sandbox when the harness is NOT root (a user's laptop): user namespace, same uid.

UNPRIVILEGED_HARNESS = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, SRC)
from interpgym.harness import sandbox
ws = Path(tempfile.mkdtemp()); (ws / "artifact").mkdir(); (ws / "tmp").mkdir()
(ws / "s.py").write_text('''
import os, subprocess
escaped = []
for cmd in (["umount", "-l", "/usr"], ["mount", "-o", "remount,rw", "/"]):
    if subprocess.run(cmd, capture_output=True).returncode == 0: escaped.append(cmd)
for path in ("/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2", "/proc/1/fd/5", "/proc/1/environ"):
    try:
        open(path, "wb" if "fd" in path else "rb").close(); escaped.append(path)
    except OSError:
        pass
if os.path.exists(MARKER): escaped.append("host tmp visible")
print("ESCAPED" if escaped else "CONTAINED", escaped)
open("artifact/done", "w").write("1")
'''.replace("MARKER", repr(MARKER)))
result = sandbox.run_sandboxed([sys.executable, "-S", "s.py"], ws, sandbox.Limits(timeout_s=60),
                               writable=[ws / "artifact", ws / "tmp"])
print(json.dumps({"isolation": result.isolation, "rc": result.returncode, "out": result.stdout_tail,
                  "err": result.stderr_tail[-1500:], "artifact": (ws / "artifact" / "done").exists()}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists() or not Path("/usr/bin/setpriv").exists(),
                    reason="needs root (to become an unprivileged user) and a system /usr/bin/python3")
def test_the_sandbox_holds_when_the_harness_is_not_root(tmp_path):
    home_dir = tmp_path / "unprivileged"
    home_dir.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(home_dir, 0o777)
    marker = home_dir / "host-marker"
    marker.write_text("x")
    src = str(Path(interpgym.__file__).resolve().parent.parent)
    script = f"SRC, MARKER = {src!r}, {str(marker)!r}\n" + UNPRIVILEGED_HARNESS
    run = subprocess.run(["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "/usr/bin/python3", "-c", script],
                         capture_output=True, text=True, timeout=120, cwd=home_dir,
                         env={"PATH": os.environ["PATH"], "HOME": str(home_dir), "TMPDIR": str(home_dir)})
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if report["isolation"] != "namespaces":
        pytest.skip("unprivileged user namespaces are disabled here")
    assert report["rc"] == 0 and "CONTAINED" in report["out"], report
    assert report["artifact"]
