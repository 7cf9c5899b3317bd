-- Nothing to do on SQLite: the PostgreSQL migration of this name keys users that
-- instances older than `username_key` insert during a rolling upgrade. A SQLite database
-- is one file served by one instance, which is upgraded by stopping it: no old instance
-- ever writes beside a new one. (The directory exists so both backends list the same
-- migrations.)
SELECT 1;
