//! A Mayday server for tests.
