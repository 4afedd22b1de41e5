"""One build of a cycle: the event cache, staging at (on, as_of) with retractions applied, the default
timetable, and running each table's SQL into the run's own panel file."""
