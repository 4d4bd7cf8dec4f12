"""The task registry. Task modules are imported lazily: listing tasks costs nothing."""

from __future__ import annotations

from functools import cache

from interpgym.core.errors import UserError
from interpgym.core.optional import import_feature
from interpgym.harness.task import Task, require_known

# id -> "module:factory"; a factory returns the Task (cheap: heavy data is built lazily).
TASKS: dict[str, str] = {
    "demo/mean": "interpgym.harness.tasks.demo_mean:make_task",
    "sae/toy": "interpgym.harness.tasks.sae_toy:make_task",
    "sae/digits": "interpgym.harness.tasks.sae_digits:make_task",
    "proofs/maxk": "interpgym.harness.tasks.proofs_maxk:make_task",
    "proofs/maxk-heldout": "interpgym.harness.tasks.proofs_maxk_heldout:make_task",
    "proofs/train-maxk": "interpgym.harness.tasks.proofs_train_maxk:make_task",
    "probe/detect": "interpgym.harness.tasks.probe_detect:make_task",
    "steer/concept": "interpgym.harness.tasks.steer_concept:make_task",
    "edit/single": "interpgym.harness.tasks.edit_facts:make_single",
    "edit/sequential": "interpgym.harness.tasks.edit_facts:make_sequential",
    "edit/editability": "interpgym.harness.tasks.edit_editability:make_task",
}


@cache
def get_task(task_id: str) -> Task:
    """The task `task_id` (`UserError` listing the known ids if unknown)."""
    target = require_known(task_id, TASKS, "task")
    module, _, factory = target.partition(":")
    # A missing optional third-party package is a one-line error naming it; an ImportError
    # from interpgym's own modules is a bug and surfaces as one.
    return getattr(import_feature(module, f"task {task_id}"), factory)()


def available_task_ids() -> list[str]:
    """Ids of the tasks whose optional third-party packages are installed here (our own import errors raise)."""
    ids = []
    for task_id in TASKS:
        try:
            get_task(task_id)
        except UserError:
            continue
        ids.append(task_id)
    return ids


def task_ids() -> list[str]:
    return list(TASKS)
