"""One exception tree for the whole library, HTTP-agnostic.

::

    HopperGraphError
     +-- NotFound                      no instance with that id (or scope and name)
     +-- ValidationError               bad input; ``errors`` maps dotted field paths to messages
     |    +-- ScopeRuleViolation       a hierarchy rule: parent scope, project_id, SINGLETON
     +-- Conflict                      the request is valid but the graph's state refuses it
     |    +-- DuplicateName            (name, scope) is taken
     |    +-- GlobalAlreadyExists      a second GLOBAL instance
     |    +-- DuplicateProject         a second PROJECT for one project_id
     |    +-- InvalidTransition        the event is not allowed from the current status
     |    +-- ConcurrentModification   the expected version is not the stored one
     |    +-- ParentNotActive          start/resume under a parent that is not ACTIVE
     |    +-- InstanceRunning          archive/delete refused while something in it runs
     |    +-- ParentArchived           nothing may be created under an ARCHIVED parent
     |    +-- LimitExceeded            max_child_instances or max_depth reached
     |    +-- RestoreInProgress        an import is writing the graph; live writes wait
     +-- HookVetoed                    a before-hook raised; nothing was written
     |    +-- HookTimedOut             a before-hook ran past its time limit
     +-- DatabaseUnavailable           Neo4j cannot be reached (or timed out)

The API maps each class to one HTTP status in exactly one place (``api/errors.py``).
"""

from __future__ import annotations

from typing import Any


class HopperGraphError(Exception):
    """Base of every error the library raises on purpose.

    ``code`` is a stable, machine-readable slug; ``details`` carries the facts a caller
    needs to act (the id, the current status, the allowed events, ...); ``errors`` maps
    dotted field paths to messages when the error is about particular fields.
    """

    code = "hopper-graph-error"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.errors: dict[str, list[str]] = errors or {}
        self.details = details


def _known(**facts: Any) -> dict[str, Any]:
    """The facts an error was given, leaving out those its raiser did not know (None)."""
    return {key: value for key, value in facts.items() if value is not None}


class NotFound(HopperGraphError):
    code = "not-found"


class ValidationError(HopperGraphError):
    """Invalid input. ``errors`` maps each bad field's dotted path to its messages."""

    code = "validation-error"


class ScopeRuleViolation(ValidationError):
    code = "scope-rule-violation"


class Conflict(HopperGraphError):
    code = "conflict"


class DuplicateName(Conflict):
    """(name, scope) is taken: ``name``, ``scope`` and, when known, ``existing_id`` (the
    instance holding the name) say by whom."""

    code = "duplicate-name"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None, *,
                 name: str | None = None, scope: str | None = None,
                 existing_id: str | None = None, **details: Any) -> None:
        super().__init__(message, errors, **_known(name=name, scope=scope,
                                                   existing_id=existing_id), **details)
        self.name, self.scope, self.existing_id = name, scope, existing_id


class GlobalAlreadyExists(Conflict):
    """A second GLOBAL: ``existing_id`` is the one there is (None when it vanished before
    it could be read), so a caller can use it instead."""

    code = "global-already-exists"

    def __init__(self, message: str = "a GLOBAL instance already exists",
                 errors: dict[str, list[str]] | None = None, *,
                 existing_id: str | None = None, **details: Any) -> None:
        super().__init__(message, errors, **_known(existing_id=existing_id), **details)
        self.existing_id = existing_id


class DuplicateProject(Conflict):
    code = "duplicate-project"


class InvalidTransition(Conflict):
    """An event not allowed from the current status; names both and what is allowed."""

    code = "invalid-transition"


class ConcurrentModification(Conflict):
    code = "concurrent-modification"


class ParentNotActive(Conflict):
    """start/resume refused: ``parent_id`` and ``parent_status`` name the parent in the way."""

    code = "parent-not-active"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None, *,
                 parent_id: str | None = None, parent_status: str | None = None,
                 **details: Any) -> None:
        super().__init__(message, errors, **_known(parent_id=parent_id,
                                                   parent_status=parent_status), **details)
        self.parent_id, self.parent_status = parent_id, parent_status


class InstanceRunning(Conflict):
    code = "instance-running"


class ParentArchived(Conflict):
    code = "parent-archived"


class LimitExceeded(Conflict):
    code = "limit-exceeded"


class RestoreInProgress(Conflict):
    code = "restore-in-progress"


class HookVetoed(HopperGraphError):
    code = "hook-vetoed"


class HookTimedOut(HookVetoed):
    code = "hook-timed-out"


class DatabaseUnavailable(HopperGraphError):
    code = "database-unavailable"
