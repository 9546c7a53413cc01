// name: complete_instance_names
// Shell completion of SCOPE:NAME: the names in $scope that start with $prefix, in name
// order, at most $limit. A prefix seek on the (name, scope) uniqueness constraint's index,
// so it costs what it returns, however many instances there are. The hint holds the
// planner to the seek: left to its statistics, it chose a scan of the whole index after
// a test had filled and wiped the graph.
// params: scope, prefix, limit
MATCH (n:HopperInstance)
USING INDEX SEEK n:HopperInstance(name, scope)
WHERE n.name STARTS WITH $prefix AND n.scope = $scope
RETURN n.name AS name
ORDER BY n.name
LIMIT toInteger($limit)
