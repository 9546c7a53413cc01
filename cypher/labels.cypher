// Labels and selectors (hopper_graph/labels.py): the reads that select instances by label.
// A selector reaches a query as parameters only ($selector, and the requirement an index
// seeks as $label_key / $label_values); the text here is fixed.

// name: list_by_label
// A page of a list whose selector has an `=` or `in` requirement ($label_key with one of
// $label_values): for each value, that label's instances come from the (key, value,
// created_at, id) index of the LABELED edges in page order, pass the other filters and
// the rest of the selector, and stop at the page's end; the few lists are then merged in
// creation order. A page costs the page (times the values), not the label's instances.
// $with_total adds how many match in all, which reads every match. The SEEK hint holds the
// planner to a seek of the pair: with other statistics it once scanned the whole index.
// params: label_key, label_values, scope, status, parent_id, project_id, selector, after_at, after_id, skip, limit, with_total
UNWIND $label_values AS v
CALL (v) {
  MATCH (n:HopperInstance)-[r:LABELED {key: $label_key, value: v}]->(:Label)
  USING INDEX SEEK r:LABELED(key, value, created_at, id)
  WHERE {{seek_from_cursor(r)}}
  WITH n, r ORDER BY r.key, r.value, r.created_at, r.id  // the index's order: no sort
  WHERE {{after_cursor(r)}} AND {{list_filters(n)}}
  WITH n LIMIT CASE WHEN $with_total THEN 4611686018427387904
                    ELSE toInteger($skip) + toInteger($limit) END
  RETURN n
}
WITH n ORDER BY n.created_at, n.id  // at most a page for each value
{{list_page(n)}}

// name: get_descendants_selected
// As get_descendants, only the instances below that match $selector: a page of them level
// by level, in creation order within a level, after the cursor, and with $with_total how
// many match in all. The walk reads the subtree (a selector narrows the answer, not the
// walk); only the page's nodes are read in full. No row when the instance does not exist.
// params: id, selector, after_depth, after_at, after_id, skip, limit, with_total
MATCH (n:HopperInstance {id: $id})
CALL (n) {
  WITH n WHERE $with_total  // before the walk: nothing is counted unless asked
  MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
  WITH DISTINCT d WHERE {{selector_matches(d)}}
  RETURN count(d) AS total
}
CALL (n) {
  MATCH (n)-[:PARENT_OF*1..]->(d:HopperInstance)
  WITH DISTINCT d  // rows of a var-length match carry their path: keep the nodes
  WITH d, d.depth AS depth, d.created_at AS at, d.id AS id
  WHERE (depth > $after_depth
     OR (depth = $after_depth AND (at > $after_at OR (at = $after_at AND id > $after_id))))
    AND {{selector_matches(d)}}
  WITH d ORDER BY depth, at, id SKIP toInteger($skip) LIMIT toInteger($limit)
  RETURN collect(d) AS page
}
WITH CASE WHEN $with_total THEN total END AS total, [x IN page | properties(x)] AS props
RETURN total, {{instance_columns(props)}}

// name: matching_instance_ids
// Which of $ids name instances that match $selector (the events of a feed page are kept
// when their instance matches): one seek per id.
// params: ids, selector
UNWIND $ids AS id
MATCH (n:HopperInstance {id: id})
WITH n WHERE {{selector_matches(n)}}
RETURN collect(n.id) AS ids
