//! Real services for tests: an S3-compatible server and PostgreSQL.
