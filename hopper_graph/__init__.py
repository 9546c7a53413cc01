"""hopper_graph: the instance hierarchy of Hopper (GLOBAL, PROJECT, ORCHESTRATION) in Neo4j.

Start with :class:`InstanceRepository` over a neo4j ``Driver`` (see ``connect``), after
``apply_schema`` has put the constraints in place.
"""

from importlib.metadata import PackageNotFoundError, version

from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import (
    ConcurrentModification,
    Conflict,
    DatabaseUnavailable,
    DuplicateName,
    DuplicateProject,
    GlobalAlreadyExists,
    GlobalNotMovable,
    HookTimedOut,
    HookVetoed,
    HopperGraphError,
    InstanceRunning,
    InvalidTransition,
    LimitExceeded,
    MoveCycle,
    NotFound,
    ParentArchived,
    ParentMismatch,
    ParentNotActive,
    RestoreInProgress,
    RestoreUnfinished,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.graph import Neo4jSettings, connect
from hopper_graph.health import HealthReport
from hopper_graph.hooks import HookContext, HookRegistry
from hopper_graph.lifecycle import DeleteResult, InstanceLifecycleManager, TransitionResult
from hopper_graph.machine import InstanceLifecycle, StatusChange
from hopper_graph.manager import EffectiveConfig, InstanceManager
from hopper_graph.models import (
    FlatTreeRow,
    HopperInstance,
    InstanceEvent,
    InstanceSpec,
    Page,
    TreeNode,
)
from hopper_graph.purge import PurgeItem, PurgeReport
from hopper_graph.repository import InstanceRepository
from hopper_graph.schema import apply_schema, schema_version

try:
    __version__ = version("hopper-graph")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = [
    "ConcurrentModification",
    "Conflict",
    "DatabaseUnavailable",
    "DeleteResult",
    "DuplicateName",
    "DuplicateProject",
    "EffectiveConfig",
    "FlatTreeRow",
    "GlobalAlreadyExists",
    "GlobalNotMovable",
    "HealthReport",
    "HookContext",
    "HookRegistry",
    "HookTimedOut",
    "HookVetoed",
    "HopperGraphError",
    "HopperInstance",
    "HopperScope",
    "InstanceEvent",
    "InstanceLifecycle",
    "InstanceLifecycleManager",
    "InstanceManager",
    "InstanceRepository",
    "InstanceRunning",
    "InstanceSpec",
    "InstanceStatus",
    "InstanceType",
    "InvalidTransition",
    "LimitExceeded",
    "MoveCycle",
    "Neo4jSettings",
    "NotFound",
    "Page",
    "ParentArchived",
    "ParentMismatch",
    "ParentNotActive",
    "PurgeItem",
    "PurgeReport",
    "RestoreInProgress",
    "RestoreUnfinished",
    "ScopeRuleViolation",
    "StatusChange",
    "TransitionResult",
    "TreeNode",
    "ValidationError",
    "__version__",
    "apply_schema",
    "connect",
    "schema_version",
]
