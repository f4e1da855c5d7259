"""Redis bindings: each implements a port the domain owns, and degrades to in-process work
when Redis is missing or down."""
