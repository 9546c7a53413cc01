-- The peer's schema: the instances as an adjacency list and the audit trail as a table,
-- keyed and indexed as a careful SQL user would, for the same reads and writes as ours.

CREATE TABLE instances (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    scope         text NOT NULL,
    status        text NOT NULL,
    instance_type text NOT NULL,
    parent_id     uuid REFERENCES instances ON DELETE CASCADE,
    project_id    text,
    config        jsonb NOT NULL DEFAULT '{}',
    config_set    jsonb NOT NULL DEFAULT '{}',  -- the config as given, before the defaults
    metadata      jsonb NOT NULL DEFAULT '{}',
    labels        jsonb NOT NULL DEFAULT '{}',  -- label keys to values, as ours
    version       int NOT NULL DEFAULT 1,
    depth         int NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    stopped_at    timestamptz,
    archived_at   timestamptz,
    heartbeat_at  timestamptz,
    UNIQUE (name, scope)
);
CREATE INDEX instances_parent ON instances (parent_id);
CREATE INDEX instances_parent_page ON instances (parent_id, created_at, id);
-- The filtered list page's order after its filters, so a page is read from the index
-- (with (scope, status) alone, every match is fetched and sorted); it serves the
-- (scope, status) lookups too, so that index would be redundant.
CREATE INDEX instances_scope_status_page ON instances (scope, status, created_at, id);
CREATE INDEX instances_project ON instances (project_id);
-- A label selector's containment test (labels @> '{"team": "infra"}') from a GIN index:
-- the index finds the matches, which are then sorted for the page (GIN has no order).
CREATE INDEX instances_labels ON instances USING GIN (labels jsonb_path_ops);

CREATE TABLE events (
    seq         bigserial PRIMARY KEY,
    id          uuid NOT NULL,
    instance_id uuid NOT NULL,
    event       text NOT NULL,
    from_status text,
    to_status   text,
    actor       text,
    reason      text,
    cause       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_instance ON events (instance_id, seq);
