"""The task registry. Task modules are imported lazily: listing tasks costs nothing."""

from __future__ import annotations

import importlib
from functools import cache

from interpgym.core.errors import UserError
from interpgym.harness.task import Task, require_known

# id -> "module:factory"; a factory returns the Task (cheap: heavy data is built lazily).
TASKS: dict[str, str] = {
    "demo/mean": "interpgym.harness.tasks.demo_mean:make_task",
    "sae/toy": "interpgym.harness.tasks.sae_toy:make_task",
    "sae/digits": "interpgym.harness.tasks.sae_digits:make_task",
    "proofs/maxk": "interpgym.harness.tasks.proofs_maxk:make_task",
    "edit/single": "interpgym.harness.tasks.edit_facts:make_single",
    "edit/sequential": "interpgym.harness.tasks.edit_facts:make_sequential",
}


@cache
def get_task(task_id: str) -> Task:
    """The task `task_id` (`UserError` listing the known ids if unknown)."""
    target = require_known(task_id, TASKS, "task")
    module, _, factory = target.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:  # the task's family is not part of this installation (yet)
        raise UserError(f"task {task_id} is unavailable here: {exc}; install the full interpgym package") from exc
    return getattr(loaded, factory)()


def available_task_ids() -> list[str]:
    """Ids of the tasks whose modules import here (a family may be missing from a partial install)."""
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
