"""One exception tree for the whole library, HTTP-agnostic.

::

    HopperGraphError
     +-- NotFound                      no instance with that id (or scope and name)
     +-- ValidationError               bad input; ``errors`` maps dotted field paths to messages
     +-- InvalidSelector               a label selector that does not parse (names the position)
     |    +-- ScopeRuleViolation       a hierarchy rule: parent scope, project_id, SINGLETON
     |         +-- GlobalNotMovable    a move of the GLOBAL instance (always the root)
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
     |    |    +-- RestoreUnfinished   a restore began and has not finished: the graph is
     |    |                            incomplete, nothing reads or writes it (HTTP 503)
     |    +-- MoveCycle                a move under the instance itself or a descendant
     |    +-- ParentMismatch           a move's expected_parent_id is not the current parent
     |    +-- InstanceProtected        a lien protects it from delete, archive or purge
     +-- Forbidden                     a scoped token's role or subtree does not reach that far
     +-- HookVetoed                    a before-hook raised; nothing was written
     |    +-- HookTimedOut             a before-hook ran past its time limit
     +-- DatabaseUnavailable           Neo4j cannot be reached (or timed out)
     +-- ConfigurationError            the setup is wrong, not the caller's input: a setting
     |    |                            (HOPPER_* variables, an app's config) that cannot be used
     |    +-- TemplateError            a scope's config template (also a ValueError)
     |    +-- QueryFileError           a .cypher file breaks the named-query convention
     |    |                            (also a ValueError)
     |    +-- LocalNeo4jError          the local development server cannot be got or run
     +-- CommandError                  a command-line command cannot go on (its exit code)

The API maps each class to one HTTP status in exactly one place (``api/errors.py``); a
ConfigurationError there is the server's fault, a 500 like any unexpected error.
"""

from __future__ import annotations

from pathlib import Path
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


class InvalidSelector(HopperGraphError):
    """A label selector that does not parse: ``position`` (1-based) is where it went wrong
    (a 400, like a malformed query parameter)."""

    code = "invalid-selector"


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


class RestoreUnfinished(RestoreInProgress):
    """A restore's marker is there (an import runs, or was killed mid-way): the detail
    ``restore`` names it (file, started_at, host, pid, counts) and, as ``rerun``, the
    command that repairs it."""

    code = "restore-unfinished"


# -- move (hopper_graph/move.py) ---------------------------------------------------------
class MoveCycle(Conflict):
    """A move would hang an instance under itself or one of its descendants: ``id`` is the
    instance, ``parent_id`` the target."""

    code = "move-cycle"


class ParentMismatch(Conflict):
    """A move named the parent it expected (``expected_parent_id``) and the instance hangs
    elsewhere (``parent_id``, the current one): the move was made on a stale read."""

    code = "parent-mismatch"


class GlobalNotMovable(ScopeRuleViolation):
    """The GLOBAL instance is always the root: it never moves."""

    code = "global-not-movable"


class Forbidden(HopperGraphError):
    """A token may not do this: its role is too low, or the target is outside its subtree
    (hopper_graph/tokens.py). ``required_role`` and ``required_root`` (an instance id;
    None, and left out of a problem document, for the whole graph) say what would be
    needed; ``token_role`` and ``token_root`` what the token has. It never says whether
    an id outside the subtree exists."""

    code = "forbidden"


# -- liens (hopper_graph/liens.py) --------------------------------------------------------
class InstanceProtected(Conflict):
    """A lien refuses the change: ``protected`` lists each protected instance with its
    liens (id, reason, origin); ``action`` is what was refused (hopper_graph/liens.py)."""

    code = "instance-protected"


class HookVetoed(HopperGraphError):
    code = "hook-vetoed"


class HookTimedOut(HookVetoed):
    code = "hook-timed-out"


class DatabaseUnavailable(HopperGraphError):
    code = "database-unavailable"


class ConfigurationError(HopperGraphError):
    """The library or the app cannot work as set up: the operator's to fix, not the
    caller's (e.g. no Neo4j URI and no driver, a setting out of range)."""


class TemplateError(ConfigurationError, ValueError):
    """A config template that cannot be used; names the file and, where known, the keys."""

    def __init__(self, path: Path, problem: str,
                 errors: dict[str, list[str]] | None = None) -> None:
        details = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in (errors or {}).items())
        super().__init__(f"{path}: {problem}" + (f": {details}" if details else ""), errors)
        self.path = path


class QueryFileError(ConfigurationError, ValueError):
    """A ``.cypher`` file breaks the named-query convention."""


class LocalNeo4jError(ConfigurationError):
    """The local development server could not be obtained, started or stopped."""


class CommandError(HopperGraphError):
    """A command cannot go on; the command line shows the message as its one error line
    and exits with ``exit_code`` (1: an error, 2: a usage error)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
