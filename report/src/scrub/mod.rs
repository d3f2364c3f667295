//! Minidump and annotation scrubbing.
