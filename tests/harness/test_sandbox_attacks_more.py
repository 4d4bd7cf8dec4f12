"""Attacks on the rebuilt sandbox (after issue 7), run the way a hostile solution would.

Each test is a minimal reproducer driven through a real entry point (`run_trial`, the
store, the CLI), written by an attack run on the rebuilt sandbox; every hole it found is
closed except the two marked `xfail(strict=True)`, which are known and documented
(they assert the safe behaviour, so they would turn into errors once closed). The harness runs as root here and in
CI; tests that need the isolated sandbox skip where it is unavailable.

Tests that can leave a poisoned tree behind point `INTERPGYM_SCRATCH` at their own
`tmp_path` and remove it with `rm -rf` (Python's `shutil.rmtree` cannot), so a failure
never reaches the machine's shared scratch root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from interpgym.harness.campaign import baselines, record_trial
from interpgym.harness.records import Budgets, Proposal
from interpgym.harness.sandbox import Limits, harness_is_root, namespaces_available
from interpgym.harness.store import RunStore
from interpgym.harness.trial import run_trial

needs_namespaces = pytest.mark.skipif(not namespaces_available(), reason="the isolated sandbox is unavailable here")

WRITE_ZERO = textwrap.dedent("""
    import numpy as np
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(16, dtype=np.float32)}, os.environ["INTERPGYM_ARTIFACT_DIR"] + "/answer.safetensors")
""")


def trial(task, *code: str, timeout_s: float = 60.0, memory_mb: int = 1024, max_output_mb: int = 256,
          disk_mb: int = 1024, max_files: int = 50_000, **kwargs):
    source = "import os, sys\n" + "\n".join(textwrap.dedent(part) for part in code)
    return run_trial(task, files={"solution.py": source}, params=task.default_params, seed=0,
                     limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_output_mb=max_output_mb,
                                   disk_mb=disk_mb, max_files=max_files), **kwargs)


@pytest.fixture
def private_scratch(tmp_path, monkeypatch):
    """A scratch root of this test's own, removed with `rm -rf` whatever the test left in it."""
    root = tmp_path / "scratch"
    monkeypatch.setenv("INTERPGYM_SCRATCH", str(root))
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _make_deep_chain(top: Path, depth: int) -> None:
    """A chain of `depth` nested one-letter folders under `top` (as a solution would make it, by chdir)."""
    here = os.getcwd()
    try:
        os.makedirs(top, exist_ok=True)
        os.chdir(top)
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(here)


# --- (d) harness crash: a deep folder chain breaks the scratch clean-up -------------------

DEEP_CHAIN = """
    os.chdir("tmp")
    for _ in range(1200):
        os.mkdir("d"); os.chdir("d")
"""


@needs_namespaces
def test_a_deep_folder_chain_in_tmp_is_recorded_and_cleaned(demo, private_scratch):
    outcome = trial(demo, DEEP_CHAIN, WRITE_ZERO)  # today: RecursionError out of run_trial
    assert outcome.status == "ok", outcome.error
    assert not [p for p in private_scratch.iterdir() if p.is_dir()], "the trial's tree was left behind"


def test_a_stale_deep_tree_does_not_break_every_later_trial(private_scratch):
    from interpgym.harness.scratch import scratch_root, scratch_tree

    stale = scratch_root() / "trial-stale"
    _make_deep_chain(stale / "ws" / "tmp", 1200)
    old = time.time() - 3600
    os.utime(stale, (old, old))  # no .lock and old: swept by the next trial
    with scratch_tree() as tree:  # today: RecursionError from sweep_stale -> remove_tree
        assert tree.is_dir()
    assert not stale.exists()


# --- (d) lost record: a file name that is not UTF-8 breaks the store write ---------------

@needs_namespaces
def test_a_non_utf8_artifact_name_is_recorded(demo, tmp_path):
    outcome = trial(demo, """
        open(os.environ["INTERPGYM_ARTIFACT_DIR"].encode() + b"/\\xff.bin", "w").write("x")
    """)
    assert outcome.status == "invalid"
    store = RunStore(tmp_path / "runs.db")
    campaign = store.create_campaign(task=demo.id, task_version=demo.version, agent="a", agent_kind="ai", seed=0,
                                     budgets=Budgets(trials=2), harness_version="1")
    record_trial(store, demo, campaign, 1, Proposal(files={}), outcome, 0.1, baselines(demo))
    assert [t.status for t in store.trials(campaign)] == ["invalid"]


# --- (d) CLI crash: rich markup in a crash's stderr (issue 7 item 6, still open in `task score`) ---

def test_task_score_survives_markup_in_a_crash(tmp_path):
    from typer.testing import CliRunner

    from interpgym.cli import app
    from interpgym.harness.external import init_workspace

    ws = tmp_path / "ws"
    init_workspace("demo/mean", ws, kind="ai", name="mallory", store=RunStore())
    (ws / "solution.py").write_text('import sys\nsys.stderr.write("boom [/] [bold red]x\\n")\nsys.exit(1)\n')
    out = tmp_path / "score.json"
    result = CliRunner().invoke(app, ["task", "score", str(ws), "--json", str(out)])
    assert result.exception is None, repr(result.exception)
    assert json.loads(out.read_text())["status"] == "crash"


# --- (e) limits: memory is capped per process, not per trial -----------------------------

HOLD = """
    import time
    def hold(mb):
        \"\"\"Fork a child that touches `mb` MiB and sleeps; return once the memory is resident.\"\"\"
        r, w = os.pipe()
        if os.fork() == 0:
            block = bytearray(mb << 20)
            for j in range(0, len(block), 4096):
                block[j] = 1
            os.write(w, b"k"); time.sleep(30); os._exit(0)
        os.read(r, 1)
"""

MANY_PROCESSES = HOLD + """
    for i in range(3):
        hold(200)
    total_kib = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                status = open(f"/proc/{pid}/status").read()
            except OSError:
                continue
            total_kib += int(status.split("VmRSS:")[1].split()[0]) if "VmRSS:" in status else 0
    print("TOTAL_MB", total_kib >> 10, flush=True)
"""


@needs_namespaces
def test_a_trial_cannot_hold_more_than_its_memory_limit(demo):
    outcome = trial(demo, MANY_PROCESSES, WRITE_ZERO, "os._exit(0)", memory_mb=256)
    held = int(outcome.sandbox.stdout_tail.split("TOTAL_MB")[1].split()[0])
    assert held <= 256, f"the trial held {held} MB at once under a 256 MB limit"


@needs_namespaces
def test_recorded_peak_memory_counts_unwaited_children(demo):
    outcome = trial(demo, HOLD, "hold(300)\n", WRITE_ZERO, "os._exit(0)", memory_mb=512)
    # (exits without waiting for the 300 MB child)
    assert outcome.status == "ok", outcome.error
    assert outcome.peak_mem_mb is not None and outcome.peak_mem_mb >= 300, f"recorded {outcome.peak_mem_mb} MB"


# --- (e) limits: the writable folders have no byte or inode quota -------------------------

@needs_namespaces
def test_the_writable_folders_have_a_quota(demo, private_scratch):
    outcome = trial(demo, WRITE_ZERO, """
        written, files = 0, 0
        chunk = b"x" * (1 << 20)
        try:
            for i in range(48):  # 48 files of 1 MiB, each within RLIMIT_FSIZE = 1 MiB
                with open(f"tmp/blob-{i}", "wb") as f:
                    f.write(chunk)
                written += len(chunk)
            for i in range(30_000):  # more entries than the read-only check would ever walk
                open(f"tmp/f{i}", "w").close()
                files += 1
        except OSError as exc:
            print("stopped:", exc)
        print("WROTE", written >> 20, "MiB in", files, "files")
        if written > (16 << 20) or files > 20_000:
            sys.exit(3)
    """, max_output_mb=1, disk_mb=16, max_files=20_000)
    if os.geteuid() != 0:
        pytest.skip("the workspace quota is enforced where the harness is root (a tmpfs per trial)")
    assert outcome.status == "ok", outcome.error  # a quota stops the writes: the solution goes on to exit 0


# --- (a)/(f) isolation: AF_VSOCK is not confined by the network namespace ----------------

@needs_namespaces
def test_vsock_sockets_are_refused(demo):
    try:
        listener = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        listener.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
        listener.listen(1)
    except (AttributeError, OSError) as exc:
        pytest.skip(f"no vsock on this host ({exc})")
    port = listener.getsockname()[1]
    try:
        outcome = trial(demo, WRITE_ZERO, f"""
            import socket, errno
            try:
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            except OSError:
                sys.exit(0)
            try:
                s.bind((socket.VMADDR_CID_ANY, {port}))
                print("vsock socket made; port not shared with the host")
            except OSError as exc:
                print("vsock socket made; the host's port is taken here too:", errno.errorcode.get(exc.errno))
            sys.exit(3)
        """)
    finally:
        listener.close()
    assert outcome.status == "ok", (outcome.error, outcome.sandbox and outcome.sandbox.stdout_tail)


# --- (f) covert channel: locks on the shared read-only binds cross the sandbox -------------

@needs_namespaces
@pytest.mark.xfail(strict=True, reason="known, documented in docs/harness.md: system and Python folders are bound, not copied: "
                                       "flock() on their files is shared with the host and with every concurrent trial (a covert channel)")
def test_locks_on_bound_files_do_not_cross_the_sandbox(demo):
    import fcntl

    import interpgym

    target = Path(interpgym.__file__).resolve()  # inside the sandbox at the same path (read-only bind)
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "the other trial" sets a bit
        outcome = trial(demo, WRITE_ZERO, f"""
            import fcntl
            fd = os.open({str(target)!r}, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("read a bit set outside the sandbox", file=sys.stderr); sys.exit(3)
        """)
    finally:
        os.close(fd)
    assert outcome.status == "ok", outcome.error


# --- (a) fail-open: without namespaces a root harness runs the solution as root ----------

@pytest.mark.skipif(not harness_is_root(), reason="only a root harness turns a missing sandbox into root access")
def test_a_root_harness_never_runs_a_solution_as_root(demo, monkeypatch):
    from interpgym.core.cache import home
    from interpgym.core.errors import UserError
    from interpgym.harness import sandbox
    from interpgym.harness.secret import harness_secret

    harness_secret()
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: False)  # as on a host where the probe fails
    try:
        outcome = trial(demo, WRITE_ZERO, f"""
            secret = {str(home() / "harness" / "secret")!r}
            if os.geteuid() == 0 or os.access(secret, os.R_OK):
                print("root:", os.geteuid() == 0, "secret readable:", os.access(secret, os.R_OK), file=sys.stderr)
                sys.exit(3)
        """)
    except UserError:
        return  # refusing to run untrusted code unisolated is a fine answer
    assert outcome.status == "ok", outcome.error


# --- (a) the harness's own files are world-readable --------------------------------------

def test_the_secret_and_the_home_are_private(tmp_path, monkeypatch):
    from interpgym.core.cache import home
    from interpgym.harness.secret import harness_secret

    monkeypatch.setenv("INTERPGYM_HOME", str(tmp_path / "fresh-home"))  # created by the harness, as on first use
    harness_secret()
    secret = home() / "harness" / "secret"
    assert os.stat(secret).st_mode & 0o077 == 0, oct(os.stat(secret).st_mode)
    assert os.stat(home()).st_mode & 0o077 == 0, oct(os.stat(home()).st_mode)


# --- (d) harness memory/time: a safetensors header of many tiny tensors -------------------

def test_a_header_of_many_tensors_is_refused_before_loading(tmp_path):
    import struct

    from interpgym.harness.task import InvalidSolution
    from interpgym.harness.trial import load_artifact

    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(50_000)},
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    (tmp_path / "answer.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(InvalidSolution):
        load_artifact(tmp_path)


# --- (c)/(d) contract: JSON numbers that overflow to infinity --------------------------

def test_json_numbers_that_overflow_are_refused(tmp_path):
    from interpgym.harness.task import InvalidSolution
    from interpgym.harness.trial import load_artifact

    (tmp_path / "proof.json").write_text('{"x": 1e400, "y": -1e400}')
    with pytest.raises(InvalidSolution):
        load_artifact(tmp_path)


# --- (d) crash instead of a record: proposal text that is not encodable ------------------

def test_an_unencodable_proposal_is_invalid_not_a_crash(demo):
    outcome = run_trial(demo, files={"solution.py": "x = '\udcff'\n"}, params=demo.default_params, seed=0)
    assert outcome.status == "invalid"


# --- (c)/(f) the val split is one oracle shared by every campaign -------------------------

@pytest.mark.xfail(strict=True, reason="known, documented in docs/harness.md: every campaign is scored on the same val split at full "
                                       "precision: 17 val trials spread over two 10-trial campaigns solve for demo/mean's val target, "
                                       "and submitting it beats the reference on test")
def test_val_feedback_across_campaigns_does_not_beat_the_reference(demo):
    import torch

    from interpgym.harness.task import Artifact

    def val(w: torch.Tensor, campaign_seed: int) -> float:  # what one val trial reports back to its agent
        return demo.score(Artifact(tensors={"answer": {"w": w}}, json={}), "val", campaign_seed).value

    dim = 16
    s0 = val(torch.zeros(dim), 0)
    queries = [val(torch.eye(dim)[i], 0 if i < 9 else 1) for i in range(dim)]  # campaign A: 10 trials, B: 7
    leaked = torch.tensor([(dim * (q - s0) + 1) / 2 for q in queries])  # -mean((e_i - t)^2) is linear in t_i
    test = demo.score(Artifact(tensors={"answer": {"w": leaked}}, json={}), "test", 2).value
    assert baselines(demo).normalize(test, "test") <= 1.0



@needs_namespaces
def test_one_process_cannot_hold_memory_outside_its_address_space(demo):
    outcome = trial(demo, WRITE_ZERO, """
        chunk, held = b"x" * (1 << 20), []
        try:
            for i in range(3):
                fd = os.memfd_create(f"m{i}")
                for _ in range(200):
                    os.write(fd, chunk)
                held.append(fd)
        except OSError:
            pass
        if len(held) * 200 > 256:
            print("holding", len(held) * 200, "MB in memfds", file=sys.stderr); sys.exit(3)
    """, memory_mb=256)
    if os.geteuid() != 0:
        pytest.skip("memory outside the address space is capped by the per-trial control group (root only)")
    # Contained either way: the writes fail, or the kernel kills the trial inside its group.
    assert outcome.status in ("ok", "oom"), outcome.error
    assert outcome.peak_mem_mb is not None and outcome.peak_mem_mb <= 256 + 1




# --- (d) persistent: an agent's name is interpreted as rich markup / matplotlib mathtext ---

def _finished_campaign(tmp_path: Path, agent: str):
    """A finished external campaign named `agent`, as `task init --as ai NAME` + `task submit` record it."""
    store = RunStore(tmp_path / "runs.db")
    campaign = store.create_campaign(task="demo/mean", task_version="3", agent=agent, agent_kind="ai", seed=0,
                                     budgets=Budgets(trials=1), harness_version="1")
    store.finish_campaign(campaign, best_trial=None, best_val=None, test_score=None, normalized_test=None,
                          test_metrics=None)
    return store.campaign(campaign)


def test_an_agent_name_cannot_break_the_leaderboard(tmp_path):
    from rich.console import Console

    from interpgym.harness.leaderboard import leaderboard_rows, render_leaderboard

    campaign = _finished_campaign(tmp_path, "mallory[/]")
    Console(file=open(os.devnull, "w")).print(render_leaderboard(leaderboard_rows([campaign], noise_floors={})))


def test_an_agent_name_cannot_break_the_report(tmp_path):
    from interpgym.report import write_report

    campaign = _finished_campaign(tmp_path, "mallory$\\frac{$")
    write_report(tmp_path / "report", [campaign], [])

