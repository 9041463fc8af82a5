"""PostgreSQL storage: the embedded server, the pool, migrations and the queries."""
