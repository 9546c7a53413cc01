"""Hooks: callables a caller registers to run before and after each lifecycle event.

A before-hook runs before its change is written, holding no lock, and may veto it (by
raising, or by running past its time limit); an after-hook runs once the change committed
and cannot undo it. The lifecycle manager decides when each runs (``lifecycle``); this
module holds the registry, what a hook is told (``HookContext``) and the time limit.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from hopper_graph.errors import HookTimedOut, HookVetoed
from hopper_graph.machine import StatusChange

# The hooks lived in lifecycle.py; their failures stay on the logger the docs name.
log = logging.getLogger("hopper_graph.lifecycle")

HOOKS = ("on_create", "on_start", "on_pause", "on_resume", "on_stop", "on_archive",
         "on_delete")


@dataclass(slots=True)
class HookContext:
    """What a hook is told. ``instance`` is the stored state before the change (a map of
    properties for before-hooks; for on_create the planned instance)."""

    hook: str
    instance_id: str
    event: str
    from_status: str | None
    to_status: str | None
    actor: str | None
    reason: str | None
    cause: str | None
    at: datetime


Hook = Callable[[HookContext], None]
DEFAULT_HOOK_TIMEOUT = 30.0


class HookRegistry:
    """Callables to run before and after each lifecycle event.

    A before-hook runs before the change is written, outside any transaction and holding
    no lock, after the change was planned from the stored state; raising vetoes it
    (nothing is written, the caller gets HookVetoed naming the hook), and so does running
    longer than ``timeout`` seconds (HookTimedOut). The write then checks that the state
    the plan came from still holds; if not, the change is planned again and the hooks run
    again, so keep them free of side effects they cannot repeat. A change that is not
    written reaches no after-hook. An after-hook runs once, after commit; if it raises, the
    error is logged and the change stands.
    """

    def __init__(self, timeout: float | None = DEFAULT_HOOK_TIMEOUT) -> None:
        self._hooks: dict[tuple[str, str], list[tuple[Hook, float | None]]] = {}
        self.timeout = timeout
        """Seconds a before-hook may run (None: no limit); ``register`` can set its own."""

    def register(self, hook: str, fn: Hook, *, when: str = "after",
                 timeout: float | None = None) -> Hook:
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}; one of {', '.join(HOOKS)}")
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        self._hooks.setdefault((when, hook), []).append((fn, timeout))
        return fn

    def before(self, hook: str, timeout: float | None = None) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.before("on_start")``."""
        return lambda fn: self.register(hook, fn, when="before", timeout=timeout)

    def after(self, hook: str) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.after("on_stop")``."""
        return lambda fn: self.register(hook, fn, when="after")

    def has_before(self, *hooks: str) -> bool:
        return any(("before", hook) in self._hooks for hook in hooks)

    def run_before(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn, timeout in self._hooks.get(("before", context.hook), ()):
                self._run_one(fn, context, self.timeout if timeout is None else timeout)

    @staticmethod
    def _run_one(fn: Hook, context: HookContext, timeout: float | None) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        try:
            _call_within(fn, context, timeout)
        except _Overran:
            raise HookTimedOut(
                f"before-hook {name} for {context.hook} ran past its {timeout:g} s limit and "
                f"vetoed the change to {context.instance_id}",
                hook=context.hook, hook_function=name, id=context.instance_id,
                timeout=timeout) from None
        except Exception as exc:  # whatever a caller's hook raises is its veto
            raise HookVetoed(
                f"before-hook {name} for {context.hook} vetoed the change to "
                f"{context.instance_id}: {exc}",
                hook=context.hook, hook_function=name, id=context.instance_id,
            ) from exc

    def run_after(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn, _ in self._hooks.get(("after", context.hook), ()):
                try:
                    fn(context)
                except Exception:  # the change committed: a caller's hook cannot undo it
                    log.exception("after-hook %s for %s on %s failed; the change stands",
                                  getattr(fn, "__qualname__", repr(fn)), context.hook,
                                  context.instance_id)

    def __bool__(self) -> bool:
        return bool(self._hooks)


class _Overran(Exception):
    pass


def _call_within(fn: Hook, context: HookContext, timeout: float | None) -> None:
    """``fn(context)``, given up on after ``timeout`` seconds. Python cannot stop a thread,
    so an overrunning hook goes on in a daemon thread and its outcome is ignored."""
    if timeout is None:
        fn(context)
        return
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fn(context)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,),
                              name=f"hook-{context.hook}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Overran
    if outcome:
        raise outcome[0]


def hook_contexts(changes: Iterable[StatusChange], at: datetime, actor: str | None,
                  reason: str | None) -> list[HookContext]:
    """The contexts of the hooks ``changes`` fire, one per change (on_start, on_stop, ...)."""
    return [HookContext(f"on_{c.event}", c.id, c.event, c.previous_status.value,
                        c.status.value, actor, reason, c.cause, at) for c in changes]


def create_context(instance_id: str, actor: str | None, at: datetime) -> HookContext:
    """The on_create context of one instance."""
    return HookContext("on_create", instance_id, "create", None, "CREATED", actor, None, None,
                       at)


def delete_contexts(ids: Iterable[str], root_id: str | None, at: datetime,
                    actor: str | None, reason: str | None) -> list[HookContext]:
    """The on_delete contexts of ``ids``; each names ``root_id`` as its cause but the root
    itself (None: no cause)."""
    return [HookContext("on_delete", i, "delete", None, None, actor, reason,
                        None if i == root_id else root_id, at) for i in ids]
