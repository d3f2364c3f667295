//! Integration tests of `mayday_report::scrub`: every shared testdata dump, the
//! annotation rules, synthetic edge cases and a seeded mutation run.

mod adversarial;
mod annotations;
mod crash_site;
mod mutation;
mod support;
mod synth;
mod testdata;
