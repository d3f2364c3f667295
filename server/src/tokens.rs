//! Secrets: API tokens and deletion tokens. Only their SHA-256 is ever stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh random secret (256 bits, hex) and its hash for storage.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let hash = hash_secret(&secret);
    (secret, hash)
}

/// The stored form of a secret: hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two stored hashes without an early exit on the first difference.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
