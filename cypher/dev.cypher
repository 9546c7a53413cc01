// Queries of the development commands (`hopper-graph reset`).

// name: reset_batch
// Deletes one batch of the instance graph: instances (with their PARENT_OF and HAS_EVENT
// edges) and their liens, audit events, the event counter, the shared Label nodes and an
// unfinished import's marker, and says how many of each went (labels are not counted
// apart). The schema (constraints, indexes, SchemaMigration records) stays. Run it again
// until `done` is less than $limit: a batch per transaction keeps a big graph from filling
// the heap.
// params: limit
MATCH (n)
WHERE n:HopperInstance OR n:InstanceEvent OR n:HopperCounter OR n:HopperRestore OR n:Lien
   OR n:Label
WITH n LIMIT toInteger($limit)
WITH collect(n) AS batch
WITH batch,
     size([x IN batch WHERE x:HopperInstance]) AS instances,
     size([x IN batch WHERE x:InstanceEvent]) AS events,
     size([x IN batch WHERE x:HopperCounter]) AS counters,
     size([x IN batch WHERE x:HopperRestore]) AS markers
FOREACH (x IN batch | DETACH DELETE x)
RETURN size(batch) AS done, instances, events, counters, markers
