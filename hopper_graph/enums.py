"""The three enumerations of the instance model, and what each lifecycle event does.

Every value equals its name, in upper case, in the graph, the API and the command line.
"""

from __future__ import annotations

from enum import StrEnum


class HopperScope(StrEnum):
    """Where an instance sits in the hierarchy; a child never ranks above its parent."""

    GLOBAL = "GLOBAL"
    PROJECT = "PROJECT"
    ORCHESTRATION = "ORCHESTRATION"

    @property
    def description(self) -> str:
        return _SCOPE_DESCRIPTIONS[self]

    @property
    def rank(self) -> int:
        """0 for GLOBAL, 1 for PROJECT, 2 for ORCHESTRATION: a child's rank is >= its parent's."""
        return _SCOPE_RANKS[self]


_SCOPE_DESCRIPTIONS = {
    HopperScope.GLOBAL: "The one root instance: decides what should be worked on.",
    HopperScope.PROJECT: "One per project, long-lived: decides how the project's work is done.",
    HopperScope.ORCHESTRATION: "One per run, short-lived: executes the work.",
}
_SCOPE_RANKS = {HopperScope.GLOBAL: 0, HopperScope.PROJECT: 1, HopperScope.ORCHESTRATION: 2}


class InstanceStatus(StrEnum):
    """Lifecycle status; ARCHIVED is terminal."""

    CREATED = "CREATED"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    ARCHIVED = "ARCHIVED"

    @property
    def is_running(self) -> bool:
        """ACTIVE and PAUSED instances hold resources: stop them before archive or delete."""
        return self in (InstanceStatus.ACTIVE, InstanceStatus.PAUSED)


class InstanceType(StrEnum):
    """How long an instance lives and whether it may have same-scope siblings."""

    SINGLETON = "SINGLETON"
    PERSISTENT = "PERSISTENT"
    EPHEMERAL = "EPHEMERAL"


DEFAULT_INSTANCE_TYPE = {
    HopperScope.GLOBAL: InstanceType.SINGLETON,
    HopperScope.PROJECT: InstanceType.PERSISTENT,
    HopperScope.ORCHESTRATION: InstanceType.EPHEMERAL,
}

ALLOWED_PARENT_SCOPES: dict[HopperScope, frozenset[HopperScope]] = {
    HopperScope.GLOBAL: frozenset(),
    HopperScope.PROJECT: frozenset({HopperScope.GLOBAL, HopperScope.PROJECT}),
    HopperScope.ORCHESTRATION: frozenset({HopperScope.PROJECT, HopperScope.ORCHESTRATION}),
}


EVENT_SUMMARIES = {
    "start": "Start an instance (CREATED or STOPPED -> ACTIVE); its parent must be ACTIVE.",
    "pause": "Pause an ACTIVE instance; its ACTIVE descendants are paused with it.",
    "resume": "Resume a PAUSED instance, and the descendants its pause had paused.",
    "stop": "Stop an ACTIVE or PAUSED instance and everything running below it.",
    "archive": "Archive a CREATED or STOPPED instance and its whole subtree (terminal).",
}
"""Each lifecycle event in one sentence: the API's operation summary and the command's help."""
