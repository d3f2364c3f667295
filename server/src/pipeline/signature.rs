//! Crash signatures, Socorro style. (Being written: see the signature work item.)

use super::report::Frame;

/// A crash signature: the text shown to developers and the key issues are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Human-readable signature, frames joined with ` | `.
    pub text: String,
    /// Hex SHA-256 of `text`: the grouping key.
    pub hash: String,
}

/// Computes the signature of a crashing thread's frames (innermost first).
pub fn signature(frames: &[Frame]) -> Signature {
    let text = frames
        .first()
        .map(|f| {
            f.function.clone().unwrap_or_else(|| {
                format!(
                    "{}@{}",
                    f.module.as_deref().unwrap_or("<unknown>"),
                    f.module_offset.as_deref().unwrap_or(&f.offset)
                )
            })
        })
        .unwrap_or_else(|| "EMPTY: no crashing thread".to_owned());
    let hash = hex_sha256(&text);
    Signature { text, hash }
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
