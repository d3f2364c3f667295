//! Reading the report JSON the API serves (`GET /api/v1/reports/{id}`).

use serde_json::Value;

/// The crashing thread's frames of `report` (none when it has no crashing thread).
pub fn frames(report: &Value) -> Vec<Value> {
    report["crashing_thread"]["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The function names of the crashing thread's frames (`""` for a frame without one).
pub fn functions(report: &Value) -> Vec<String> {
    frames(report)
        .iter()
        .map(|f| f["function"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The crash reason of `report` (`SIGSEGV / SEGV_MAPERR`, …; `""` when it has none).
pub fn crash_reason(report: &Value) -> &str {
    report["crash_reason"].as_str().unwrap_or_default()
}

/// A hexadecimal JSON string (`"0x1a2b"`) as a number.
pub fn hex(value: &Value) -> Option<u64> {
    let text = value.as_str()?;
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}
