"""The use cases: each callable from Python with plain arguments, returning a result record.

The CLI (and a listener, or a test) calls these; they hold the writer lock, open the store, build the
marketplaces through the provider registry and run the jobs."""
