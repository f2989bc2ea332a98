-- What D1 allows instead of VACUUM: refresh the planner's statistics.
PRAGMA optimize;
ANALYZE
