// Queries of `hopper-graph apply` (hopper_graph/apply.py).

// name: get_instances_by_scope_and_name
// The instances that exist among the given (scope, name) pairs, read in one round trip
// before an apply writes anything: $keys is a list of maps {scope, name}. Pairs with no
// instance give no row.
// params: keys
UNWIND $keys AS key
MATCH (n:HopperInstance {name: key.name, scope: key.scope})
RETURN {{instance_map(n)}} AS instance
