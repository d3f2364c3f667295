//! The processing pipeline: claim a job, symbolicate, sign, scrub, store, index.

pub mod report;
pub mod signature;
