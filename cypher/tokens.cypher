// Scoped API tokens (hopper_graph/tokens.py): a (:HopperToken) node holds the token's id,
// the SHA-256 of its secret (never the secret), its role and its expiry, and a GRANTS edge
// to the root of the subtree it may act on. "May this token touch instance X" is "is the
// root among X's ancestors (or X itself)": a walk up from X, one parent per level.

// name: create_token
// A new token granting $props.role on the subtree of $root_id. No row when the root does
// not exist.
// params: props, root_id, now
MATCH (r:HopperInstance {id: $root_id})
CREATE (t:HopperToken)-[:GRANTS]->(r)
SET t = $props, t.root_id = r.id, t.created_at = datetime($now)
RETURN t.id AS id, t.role AS role, t.root_id AS root_id, r.name AS root_name,
       r.scope AS root_scope, t.description AS description, t.created_by AS created_by,
       toString(t.created_at) AS created_at, toString(t.expires_at) AS expires_at,
       toString(t.revoked_at) AS revoked_at

// name: get_token
// A token by its id, for checking a request's secret: the stored hash, the role, whether
// it is still in force (not revoked, not expired) and the root it grants (null once the
// root has been deleted), and whether that root is the GLOBAL instance.
// params: id
MATCH (t:HopperToken {id: $id})
OPTIONAL MATCH (t)-[:GRANTS]->(r:HopperInstance)
RETURN t.id AS id, t.hash AS hash, t.role AS role, r.id AS root_id,
       r:GlobalInstance AS root_global,
       t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > datetime())
         AS in_force

// name: list_tokens
// Every token, oldest first, without its hash: what `hopper-graph token list` shows.
// params: -
MATCH (t:HopperToken)
OPTIONAL MATCH (t)-[:GRANTS]->(r:HopperInstance)
RETURN t.id AS id, t.role AS role, t.root_id AS root_id, r.name AS root_name,
       r.scope AS root_scope, t.description AS description, t.created_by AS created_by,
       toString(t.created_at) AS created_at, toString(t.expires_at) AS expires_at,
       toString(t.revoked_at) AS revoked_at
ORDER BY t.created_at, t.id

// name: revoke_token
// Revokes a token (it stays, revoked, for the record); revoking it again keeps the first
// time. No row when there is no such token.
// params: id, now
MATCH (t:HopperToken {id: $id})
SET t.revoked_at = coalesce(t.revoked_at, datetime($now))
WITH t
OPTIONAL MATCH (t)-[:GRANTS]->(r:HopperInstance)
RETURN t.id AS id, t.role AS role, t.root_id AS root_id, r.name AS root_name,
       r.scope AS root_scope, t.description AS description, t.created_by AS created_by,
       toString(t.created_at) AS created_at, toString(t.expires_at) AS expires_at,
       toString(t.revoked_at) AS revoked_at

// name: count_tokens
// How many tokens are in force (neither revoked nor expired), and how many exist at all.
// params: -
MATCH (t:HopperToken)
RETURN count(t) AS total,
       count(CASE WHEN t.revoked_at IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > datetime()) THEN 1 END)
         AS in_force

// name: instance_in_subtree
// Whether the instance $id is in the subtree of $root (the root itself included): the
// instance's ancestors, walked up from it (one parent per level: the cost is its depth,
// never the subtree's size or the graph's). False when the instance does not exist, so
// the answer says nothing about ids outside the subtree.
// params: root, id
OPTIONAL MATCH (n:HopperInstance {id: $id})
RETURN n IS NOT NULL AND $root IN [(n)<-[:PARENT_OF*0..]-(a:HopperInstance) | a.id]
         AS inside

// name: list_in_subtree
// A page of the instances in the subtree of $root (the root included) that match the
// filters, in creation order: what a token scoped to that subtree lists. The subtree is
// walked and sorted, so a page costs the subtree, not the graph. $with_total adds how many
// match in all. An empty page when the root does not exist.
// params: root, scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
OPTIONAL MATCH (r:HopperInstance {id: $root})
OPTIONAL MATCH (r)-[:PARENT_OF*0..]->(n:HopperInstance)
WITH DISTINCT n  // rows of a var-length match carry their path: keep the nodes
WITH n WHERE n IS NOT NULL AND {{after_cursor(n)}} AND {{list_filters(n)}}
WITH n ORDER BY n.created_at, n.id
{{list_page(n)}}
