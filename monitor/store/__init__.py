"""The store: SQLModel tables, schema migrations, and the queries the rest of the code calls."""
