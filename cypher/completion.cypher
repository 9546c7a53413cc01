// name: complete_instance_names
// Shell completion of SCOPE:NAME: the names in $scope that start with $prefix, in name
// order, at most $limit. A prefix seek on the (name, scope) uniqueness constraint's index,
// so it costs what it returns, however many instances there are.
// params: scope, prefix, limit
MATCH (n:HopperInstance)
WHERE n.name STARTS WITH $prefix AND n.scope = $scope
RETURN n.name AS name
ORDER BY n.name
LIMIT toInteger($limit)
