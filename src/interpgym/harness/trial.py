"""One trial: fresh workspace -> sandboxed solution -> safe artifact load -> trusted score.

`run_trial` never raises for anything the solution does; every outcome becomes a
`TrialOutcome` with a status:

* `ok`       the solution exited 0 and the scorer accepted its artifact;
* `invalid`  it exited 0 but broke the contract: a read-only file changed, the artifact
             holds something other than `.safetensors`/`.json` (a pickle, a link, a
             folder), a tensor is NaN, or the scorer rejected it (e.g. over budget);
* `crash`    non-zero exit (the stderr tail is kept as the error);
* `timeout`  killed at the wall-clock limit;
* `oom`      killed or failed for lack of memory (MemoryError, allocator failure, or
             SIGKILL without a timeout).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from interpgym.core.cache import get_or_build, home
from interpgym.core.errors import UserError
from interpgym.harness.records import Status
from interpgym.harness.sandbox import (
    Limits,
    SandboxResult,
    inside_path,
    prepare_workspace,
    run_sandboxed,
    workspace_quota,
)
from interpgym.harness.scratch import scratch_tree
from interpgym.harness.secret import secret_id
from interpgym.harness.task import MAX_JSON_BYTES, Artifact, InvalidSolution, Score, Split, Task

ARTIFACT_DIR = "artifact"
DATA_DIR = "data"
MAX_ARTIFACT_BYTES = 1 << 30
MAX_ARTIFACT_FILES = 64
MAX_EDITABLE_BYTES = 1 << 20  # per editable file a proposal writes (source code, params)
MAX_WORKSPACE_ENTRIES = 20_000  # entries the read-only check walks outside artifact/ and tmp/
WRITABLE_DIRS = (ARTIFACT_DIR, "tmp")
_OOM_MARKERS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory", "std::bad_alloc")


@dataclass
class TrialOutcome:
    """What one trial produced. `scores` maps each split scored to its `Score` (status ok only)."""

    status: Status
    scores: dict[str, Score] = field(default_factory=dict)
    error: str | None = None
    wall_s: float = 0.0
    peak_mem_mb: float | None = None
    isolation: str = ""
    artifact_dir: Path | None = None  # kept copy of the artifact (status ok, when keep_artifact_to given)
    sandbox: SandboxResult | None = None
    # Seconds per phase: materialize, digest (read-only check), sandbox, load (artifact), score, keep.
    timings: dict[str, float] = field(default_factory=dict)


def inputs_dir(task: Task) -> Path:
    """The cached read-only inputs (`data/`) of a task version, built once per installation."""
    return get_or_build("harness-inputs", {"task": task.id, "version": task.version, "secret": secret_id()},
                        task.prepare_inputs)


def materialize(task: Task, dest: Path, files: dict[str, str] | None, params: dict[str, Any] | None) -> None:
    """Write a fresh workspace for one trial into empty `dest`.

    Raises `InvalidSolution` if `files` touches a path that is not editable, a file is
    larger than `MAX_EDITABLE_BYTES`, or `params` are off the search space (the trial is
    then recorded `invalid` without running).
    """
    files = dict(files or {})
    not_editable = sorted(set(files) - set(task.editable_files))
    if not_editable:
        raise InvalidSolution(f"files {not_editable} are read-only; editable: {sorted(task.editable_files)}")
    for rel, text in files.items():
        if not isinstance(text, str):
            raise InvalidSolution(f"{rel}: file contents must be text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidSolution(f"{rel} is not valid Unicode text ({exc.reason} at character {exc.start})") from None
    oversized = sorted(rel for rel, text in files.items() if len(text.encode()) > MAX_EDITABLE_BYTES)
    if oversized:
        raise InvalidSolution(f"files {oversized} exceed {MAX_EDITABLE_BYTES >> 10} KiB each; keep data out of source files")
    for rel, text in {**task.editable_files, **files}.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copytree(inputs_dir(task), dest / DATA_DIR)
    (dest / DATA_DIR / "MANIFEST.json").unlink(missing_ok=True)
    (dest / "INSTRUCTIONS.md").write_text(task.instructions)
    if params is not None or task.search_space:
        resolved = {**(task.default_params or {}), **(params or {})}
        task.validate_params(resolved)
        (dest / "params.json").write_text(json.dumps(resolved, indent=1, sort_keys=True))
    for name in WRITABLE_DIRS:
        (dest / name).mkdir()


FileStamp = tuple[int, int, int, int, int]  # (mode, size, inode, mtime_ns, ctime_ns)


def read_only_digest(task: Task, workspace: Path) -> dict[str, FileStamp]:
    """The `lstat` stamp of every entry the solution may not change (all but editable files, artifact/, tmp/).

    Bounded work whatever the solution left: nothing is read or followed (a link is
    stamped as a link), artifact/ and tmp/ are not entered, and more than
    `MAX_WORKSPACE_ENTRIES` entries is an `InvalidSolution`. Comparing stamps detects any
    change: the kernel sets ctime on every write, rename or chmod, and only a privileged
    process can set the clock back.
    """
    stamps: dict[str, FileStamp] = {}
    pending = [workspace]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(workspace).as_posix()
                if rel in WRITABLE_DIRS or rel in task.editable_files:
                    continue
                info = entry.stat(follow_symlinks=False)
                stamps[rel] = (info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)
                if len(stamps) > MAX_WORKSPACE_ENTRIES:
                    raise InvalidSolution(f"the workspace holds more than {MAX_WORKSPACE_ENTRIES} entries outside "
                                          "artifact/ and tmp/")
                if stat.S_ISDIR(info.st_mode):
                    pending.append(Path(entry.path))
    return stamps


MAX_SAFETENSORS_HEADER = 1 << 20  # bytes of a safetensors header (the tensor table) the harness will parse
MAX_TENSORS_PER_FILE = 4096


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _check_safetensors_header(path: str, name: str) -> None:
    """Refuse a safetensors file whose tensor table is large or long before the library allocates for it."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise InvalidSolution(f"artifact/{name} is not valid safetensors: shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_SAFETENSORS_HEADER:
            raise InvalidSolution(f"artifact/{name}: its tensor table is {length} bytes (at most "
                                  f"{MAX_SAFETENSORS_HEADER >> 10} KiB); store fewer, larger tensors")
        try:
            table = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidSolution(f"artifact/{name} is not valid safetensors: unreadable header ({exc})") from exc
    if not isinstance(table, dict) or len(table) > MAX_TENSORS_PER_FILE + 1:  # + the optional __metadata__
        raise InvalidSolution(f"artifact/{name}: more than {MAX_TENSORS_PER_FILE} tensors (or a malformed table)")


def _shown(name: str) -> str:
    """A file name as it may appear in a message and the store: undecodable bytes and control characters escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in name.encode("utf-8", "backslashreplace").decode())


def load_artifact(directory: Path, *, max_json_bytes: int = MAX_JSON_BYTES) -> Artifact:
    """Load an artifact directory safely: top-level `*.safetensors` and `*.json` regular files only.

    Anything else (pickles, `.pt`, links, folders, more than `MAX_ARTIFACT_FILES` files,
    oversized files, JSON with NaN/Infinity) is an `InvalidSolution`; sizes are checked
    from `lstat` before anything is read. Nothing here can execute code from the files.
    """
    tensors: dict[str, dict] = {}
    data: dict[str, Any] = {}
    # The solution owns the workspace: it may have replaced artifact/ itself by a link to a
    # host folder the harness (not the sandbox) can read. Never follow it.
    if Path(directory).is_symlink() or not Path(directory).is_dir():
        raise InvalidSolution("artifact/ is not a plain directory (a link or a file); write files inside it")
    entries = []
    with os.scandir(directory) as scan:
        for entry in scan:
            entries.append(entry)
            if len(entries) > MAX_ARTIFACT_FILES:
                raise InvalidSolution(f"artifact/ holds more than {MAX_ARTIFACT_FILES} files")
    if not entries:
        raise InvalidSolution("the solution wrote no artifact (artifact/ is empty)")
    total = 0
    for entry in sorted(entries, key=lambda e: e.name):
        if _shown(entry.name) != entry.name:
            raise InvalidSolution(f"artifact/{_shown(entry.name)}: file names must be printable UTF-8")
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            raise InvalidSolution(f"artifact/{entry.name} is not a regular file; only .safetensors and .json files are allowed")
        total += entry.stat(follow_symlinks=False).st_size
        if total > MAX_ARTIFACT_BYTES:
            raise InvalidSolution(f"artifact exceeds {MAX_ARTIFACT_BYTES >> 20} MiB")
        if entry.name.rpartition(".")[2] not in ("safetensors", "json"):
            raise InvalidSolution(f"artifact/{entry.name}: only .safetensors and .json files are allowed (no pickles)")
        if entry.name.endswith(".json") and entry.stat(follow_symlinks=False).st_size > max_json_bytes:
            raise InvalidSolution(f"artifact/{entry.name} exceeds {max_json_bytes >> 10} KiB; put numbers in .safetensors")
    for entry in sorted(entries, key=lambda e: e.name):
        stem, _, ext = entry.name.rpartition(".")
        shown = _shown(entry.name)
        if ext == "safetensors":
            _check_safetensors_header(entry.path, shown)
            try:
                tensors[stem] = load_file(entry.path)
            except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
                raise InvalidSolution(f"artifact/{shown} is not valid safetensors: {exc}") from exc
        else:
            try:
                with open(entry.path, "rb") as handle:
                    text = handle.read(max_json_bytes + 1)  # the file cannot grow past its checked size unnoticed
                if len(text) > max_json_bytes:
                    raise ValueError("file grew after its size was checked")
                data[stem] = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise InvalidSolution(f"artifact/{shown} is not valid JSON: {exc}") from exc
    return Artifact(tensors=tensors, json=data, directory=Path(directory))


def _python_path() -> str:
    """Where the solution's `import interpgym` resolves: this very (read-only) installation."""
    import interpgym

    return str(Path(interpgym.__file__).resolve().parent.parent)


# Per-user credential directories and files: never needed by a solution (its HOME is the
# workspace). Hidden even though trials have no network: a crash's stderr tail is sent to
# the llm agent's endpoint, so anything a solution can read could leave through it.
_CREDENTIAL_PATHS = (".ssh", ".aws", ".azure", ".gnupg", ".config", ".docker", ".kube", ".netrc", ".git-credentials",
                     ".pypirc", ".npmrc", ".huggingface", ".cache/huggingface", ".local/share/keyrings",
                     ".bash_history", ".zsh_history", ".python_history")


def hidden_paths() -> list[Path]:
    """Paths the sandbox hides: the harness home (cache with private splits, run store,
    secret) and the invoking user's credential directories and files."""
    harness_home = home().resolve()
    for needed in (Path(sys.prefix).resolve(), Path(_python_path())):
        if needed.is_relative_to(harness_home):
            raise UserError(f"INTERPGYM_HOME ({harness_home}) contains {needed}, which trials need but the sandbox "
                            "hides; point INTERPGYM_HOME at a directory of its own")
    user_home = Path.home()
    return [harness_home, *(user_home / name for name in _CREDENTIAL_PATHS if (user_home / name).exists())]


def classify_failure(result: SandboxResult) -> tuple[Status, str]:
    """Status and error text for a run that did not exit 0."""
    tail = result.stderr_tail.strip()
    if result.timed_out:
        return "timeout", f"killed after the wall-clock limit ({result.wall_s:.1f} s)"
    if result.oom_killed or any(marker in tail for marker in _OOM_MARKERS) or result.killed_by_signal == 9:
        return "oom", f"out of memory: {tail[-1500:]}"
    return "crash", f"exit code {result.returncode}: {tail[-1500:]}"


@contextmanager
def scoring_memory(budget_mb: int) -> Iterator[None]:
    """Cap this process's address space at its current size plus `budget_mb` while a scorer reads an artifact.

    A scorer that allocates what an artifact claims (a huge width, a long list) then fails
    with MemoryError or an allocator RuntimeError, which `run_trial` records as `invalid`,
    instead of the machine swapping or the kernel killing the harness. Only the soft
    limit is lowered, and it is restored on exit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as handle:
        current = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = current + (budget_mb << 20)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, soft)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _keep(artifact_dir: Path, destination: Path) -> None:
    """Copy a checked artifact (regular files only) to `destination`, replacing it atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(destination.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for entry in os.scandir(artifact_dir):
        shutil.copyfile(entry.path, staging / entry.name, follow_symlinks=False)
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(staging, destination)


def run_trial(
    task: Task,
    *,
    files: dict[str, str] | None,
    params: dict[str, Any] | None,
    seed: int,
    splits: tuple[Split, ...] = ("val",),
    limits: Limits | None = None,
    keep_artifact_to: Path | None = None,
) -> TrialOutcome:
    """Run one trial of `task` (see module docs). Cost: one solution run plus one scorer call per split.

    The workspace lives in a private scratch tree (`harness.scratch`): no other trial or
    user can read it, and it is removed afterwards even if this process is killed.
    """
    limits = limits or Limits(timeout_s=task.budgets.trial_timeout_s, memory_mb=task.budgets.trial_memory_mb)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[phase] = timings.get(phase, 0.0) + now - clock
        clock = now

    with scratch_tree() as tree:
        workspace = tree / "ws"
        workspace.mkdir()
        if any(workspace.resolve().is_relative_to(h.resolve()) for h in hidden_paths()):
            raise UserError("trial workspaces must live outside INTERPGYM_HOME: set INTERPGYM_SCRATCH to another directory")
        inputs_bytes, inputs_files = _tree_size(inputs_dir(task))
        with workspace_quota(workspace, limits, inputs_bytes + _text_bytes(task, files), inputs_files + 16):
            return _trial_in(task, workspace, files=files, params=params, seed=seed, splits=splits, limits=limits,
                             keep_artifact_to=keep_artifact_to, timings=timings, lap=lap)


def _tree_size(directory: Path) -> tuple[int, int]:
    """(bytes in whole 4 KiB pages, entries) of a harness-made folder (the task's inputs): what it takes on a tmpfs."""
    total, count = 0, 0
    for dirpath, dirnames, filenames in os.walk(directory):
        count += len(dirnames) + len(filenames)
        total += sum(-(-os.lstat(os.path.join(dirpath, name)).st_size // 4096) * 4096 for name in filenames)
        total += 4096 * len(dirnames)
    return total, count


def _text_bytes(task: Task, files: dict[str, str] | None) -> int:
    texts = [*task.editable_files.values(), *(files or {}).values(), task.instructions]
    return sum(-(-len(t.encode("utf-8", "backslashreplace")) // 4096) * 4096 for t in texts if isinstance(t, str)) + (16 << 10)


def _trial_in(task: Task, workspace: Path, *, files: dict[str, str] | None, params: dict[str, Any] | None, seed: int,
              splits: tuple[Split, ...], limits: Limits, keep_artifact_to: Path | None, timings: dict[str, float],
              lap: Callable[[str], None]) -> TrialOutcome:
    """The body of `run_trial` inside its (possibly quota-limited) workspace."""
    try:
        materialize(task, workspace, files, params)
    except InvalidSolution as exc:
        return TrialOutcome(status="invalid", error=str(exc))
    writable = [workspace / name for name in WRITABLE_DIRS]
    user = prepare_workspace(workspace, writable)
    lap("materialize")
    before = read_only_digest(task, workspace)
    lap("digest")
    inside_tmp = inside_path(workspace, workspace / "tmp")
    env = {
        "PYTHONPATH": _python_path(), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "HOME": inside_tmp, "TMPDIR": inside_tmp, "USER": "interpgym-trial", "LOGNAME": "interpgym-trial",
        "INTERPGYM_HOME": inside_tmp + "/interpgym-home",
        "INTERPGYM_ARTIFACT_DIR": inside_path(workspace, workspace / ARTIFACT_DIR), "INTERPGYM_SEED": str(seed),
        "OMP_NUM_THREADS": os.environ.get("INTERPGYM_TRIAL_THREADS", "1"),
        "MPLBACKEND": "Agg",
    }
    result = run_sandboxed([sys.executable, task.entrypoint], workspace, limits, hidden=hidden_paths(), env=env,
                           writable=writable, prepared=user)
    lap("sandbox")
    outcome = TrialOutcome(status="ok", wall_s=result.wall_s, peak_mem_mb=result.peak_mem_mb,
                           isolation=result.isolation, sandbox=result, timings=timings)
    if result.returncode != 0:
        outcome.status, outcome.error = classify_failure(result)
        return outcome
    try:
        after = read_only_digest(task, workspace)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        lap("digest")
        if changed:
            raise InvalidSolution(f"the solution created or modified read-only files {changed[:5]} "
                                  "(write only in artifact/ and tmp/)")
        with scoring_memory(limits.memory_mb):
            artifact = load_artifact(workspace / ARTIFACT_DIR, max_json_bytes=task.max_json_bytes)
            lap("load")
            for split in splits:
                outcome.scores[split] = task.score(artifact, split, seed)
        lap("score")
    except InvalidSolution as exc:
        outcome.status, outcome.error, outcome.scores = "invalid", str(exc), {}
        return outcome
    except MemoryError:
        outcome.status, outcome.scores = "invalid", {}
        outcome.error = f"scoring this artifact needs more than the trial's {limits.memory_mb} MiB; it claims too much"
        return outcome
    except Exception as exc:  # a scorer tripping over a malformed artifact must not end the campaign
        outcome.status, outcome.error, outcome.scores = "invalid", f"scorer rejected the artifact: {type(exc).__name__}: {exc}", {}
        return outcome
    if keep_artifact_to is not None:
        _keep(workspace / ARTIFACT_DIR, keep_artifact_to)
        outcome.artifact_dir = keep_artifact_to
        lap("keep")
    return outcome


def score_artifact(task: Task, directory: Path, split: Split, seed: int) -> Score:
    """Score a kept artifact again (final test scoring); raises `InvalidSolution` if it is broken."""
    with scoring_memory(task.budgets.trial_memory_mb):
        return task.score(load_artifact(directory, max_json_bytes=task.max_json_bytes), split, seed)
