//! The encryption primitives of crypto-shredding: every report blob (raw dump, raw metadata, processed report)
//! is encrypted with XAES-256-GCM ([`Cipher`]) under its report's own data key. The data
//! key lives in the index, wrapped (encrypted) by the master key; deleting a report
//! destroys its data key first, so any copy of its blobs left anywhere — a backup, a
//! lagging replica, a file someone copied — can no longer be read.
//!
//! Formats:
//! - a sealed blob is `MDY2` ‖ 24-byte nonce ‖ ciphertext+tag (XAES-256-GCM),
//!   with the blob's store key as associated data (a blob cannot be passed off
//!   as another); blobs sealed before, `MDY1` ‖ nonce ‖ ciphertext+tag
//!   (XChaCha20-Poly1305), still open;
//! - a wrapped data key is `nonce ‖ ciphertext+tag` of the 32 key bytes
//!   (XChaCha20-Poly1305), with the report id as associated data, stored as hex
//!   beside the id of the master key that wrapped it.
//!
//! The master key comes from the config (`master_key`, 64 hex digits) or
//! `MAYDAY_MASTER_KEY`; without either it is read from `<data_dir>/master.key`,
//! which is generated (mode 0600) on first start. Several server processes sharing
//! one index must share the master key. `mayday-server keys rotate` rewraps every
//! data key under a new master key (the report vault's `rotate`, which walks the
//! stored keys; this module only holds the keys and seals and opens bytes).

use std::path::{Path, PathBuf};

use aes::cipher::{BlockEncrypt as _, KeyInit as _};
use chacha20::cipher::consts::U10;
use hmac::Mac;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::Digest;

/// Bytes of a sealed blob's magic ([`Cipher::magic`]).
const MAGIC_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// Bytes [`DataKey::seal_in_place`] needs free in front of the plaintext.
pub const SEAL_HEADROOM: usize = MAGIC_LEN + NONCE_LEN;
/// Bytes [`DataKey::seal_in_place`] appends to the plaintext (the tag).
pub const SEAL_TAG: usize = 16;
/// The master key file in the data dir.
pub const MASTER_KEY_FILE: &str = "master.key";
/// A new master key during a rotation; renamed over [`MASTER_KEY_FILE`] when done.
pub const NEXT_MASTER_KEY_FILE: &str = "master.key.next";

/// Errors of the encryption layer.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A master key is not 64 hex digits.
    #[error("master key: expected 64 hex digits")]
    BadMasterKey,
    /// Reading or writing the master key file failed.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A data key was wrapped by a master key this process does not have.
    #[error("data key wrapped by unknown master key {0}")]
    UnknownMasterKey(String),
    /// Decryption failed: wrong key, or the bytes were changed.
    #[error("decryption failed")]
    Decrypt,
    /// The bytes are not a sealed blob or wrapped key.
    #[error("not a sealed blob")]
    Format,
}

impl CryptoError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CryptoError::BadMasterKey => "bad_master_key",
            CryptoError::KeyFile { .. } => "key_file",
            CryptoError::UnknownMasterKey(_) => "unknown_master_key",
            CryptoError::Decrypt => "decrypt",
            CryptoError::Format => "format",
        }
    }
}

/// A data key as stored: encrypted by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The id of the master key that wrapped it.
    pub master_key_id: String,
    /// Hex of `nonce ‖ ciphertext+tag`.
    pub wrapped: String,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The key of annotation search tags, derived from the master key: a report's
/// annotation `key = value` is indexed as its tag, a keyed hash, so the index
/// holds no annotation text and a tag cannot be computed without the key. (After
/// `keys rotate`, tags of reports processed before are under the old key: they
/// are found again once reprocessed.)
#[derive(Clone)]
pub struct SearchKey([u8; KEY_LEN]);

impl std::fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKey(..)")
    }
}

impl SearchKey {
    /// The tag of annotation `key` = `value`: 32 hex digits.
    pub fn tag(&self, key: &str, value: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(key.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// A master key: wraps the data keys.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> MasterKey {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        MasterKey::from_bytes(key)
    }

    /// Parses 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, CryptoError> {
        let bytes = hex::decode(text.trim()).map_err(|_| CryptoError::BadMasterKey)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::BadMasterKey)?;
        Ok(MasterKey::from_bytes(key))
    }

    fn from_bytes(key: [u8; KEY_LEN]) -> MasterKey {
        // The id names the key without revealing it: a hash with a domain prefix.
        let digest = sha2::Sha256::new()
            .chain_update(b"mayday master key id\0")
            .chain_update(key)
            .finalize();
        MasterKey {
            key,
            id: hex::encode(&digest[..8]),
        }
    }

    /// The key as 64 hex digits (for `keys rotate` to print when the key is not
    /// kept in a file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// A public name of this key, stored beside each data key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key of annotation search tags derived from this key.
    pub fn search_key(&self) -> SearchKey {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"mayday annotation search v1");
        SearchKey(mac.finalize().into_bytes().into())
    }

    /// Wraps `data` for `report_id` under this key.
    pub fn wrap(&self, data: &DataKey, report_id: &str) -> WrappedKey {
        let sealed = seal_raw(&self.key, report_id.as_bytes(), &data.0);
        WrappedKey {
            master_key_id: self.id.clone(),
            wrapped: hex::encode(sealed),
        }
    }

    fn unwrap(&self, wrapped: &WrappedKey, report_id: &str) -> Result<DataKey, CryptoError> {
        let bytes = hex::decode(&wrapped.wrapped).map_err(|_| CryptoError::Format)?;
        let plain = open_raw(
            Cipher::XChaCha20Poly1305,
            &self.key,
            report_id.as_bytes(),
            &bytes,
        )?;
        let key: [u8; KEY_LEN] = plain.try_into().map_err(|_| CryptoError::Format)?;
        Ok(DataKey(key))
    }

    /// Loads the master key as `config` says: `master_key`, else
    /// `MAYDAY_MASTER_KEY` (already applied to the config), else
    /// `<data_dir>/master.key`, generated with mode 0600 when missing.
    pub fn load(config: &crate::config::Config) -> Result<Keyring, CryptoError> {
        if let Some(hex) = &config.master_key {
            return Ok(Keyring::new(MasterKey::from_hex(hex)?));
        }
        let path = config.data_dir.join(MASTER_KEY_FILE);
        let key = match read_key_file(&path)? {
            Some(key) => key,
            None => {
                let key = MasterKey::generate();
                match write_key_file(&path, &key) {
                    Ok(()) => key,
                    // Another process created it first: use theirs.
                    Err(CryptoError::KeyFile { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        read_key_file(&path)?.ok_or(CryptoError::BadMasterKey)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let mut keyring = Keyring::new(key);
        // An interrupted rotation: rows may be wrapped by either key.
        if let Some(next) = read_key_file(&config.data_dir.join(NEXT_MASTER_KEY_FILE))? {
            keyring.others.push(next);
        }
        Ok(keyring)
    }
}

/// The master keys a process holds: the current one (wraps new data keys) and,
/// during a rotation, the other one.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    others: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(current: MasterKey) -> Keyring {
        Keyring {
            current,
            others: Vec::new(),
        }
    }

    /// The key new data keys are wrapped with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Wraps `data` for `report_id` under the current master key.
    pub fn wrap(&self, data: &DataKey, report_id: &str) -> WrappedKey {
        self.current.wrap(data, report_id)
    }

    /// The other key of a rotation in progress, if there is one.
    pub fn next(&self) -> Option<&MasterKey> {
        self.others.first()
    }

    /// This keyring with `other` added (it unwraps, it does not wrap).
    pub fn with_other(&self, other: MasterKey) -> Keyring {
        let mut keyring = self.clone();
        keyring.others.push(other);
        keyring
    }

    /// Unwraps a stored data key with whichever master key wrapped it.
    pub fn unwrap(&self, wrapped: &WrappedKey, report_id: &str) -> Result<DataKey, CryptoError> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .find(|k| k.id == wrapped.master_key_id)
            .ok_or_else(|| CryptoError::UnknownMasterKey(wrapped.master_key_id.clone()))?
            .unwrap(wrapped, report_id)
    }
}

/// The AEAD a blob is sealed with. Both take a 192-bit nonce, so random nonces
/// are safe, and both are a 96-bit-nonce AEAD under a subkey derived from the
/// key and the nonce's first part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// XChaCha20-Poly1305: blobs sealed before XAES-256-GCM (`MDY1`, chunked
    /// raw objects `MDR3`), and wrapped data keys.
    XChaCha20Poly1305,
    /// XAES-256-GCM (c2sp.org/XAES-256-GCM): AES-256-GCM under a subkey derived
    /// by the NIST SP 800-108 CMAC KDF. What blobs are sealed with now (`MDY2`):
    /// with AES instructions about three times as fast as XChaCha20-Poly1305
    /// on a report's blobs, which every upload seals and every job opens.
    XAes256Gcm,
}

impl Cipher {
    /// What new blobs are sealed with.
    pub const CURRENT: Cipher = Cipher::XAes256Gcm;

    /// Every cipher a blob may be sealed with.
    pub const ALL: [Cipher; 2] = [Cipher::XAes256Gcm, Cipher::XChaCha20Poly1305];

    /// The magic at the start of a blob sealed with this cipher.
    fn magic(self) -> &'static [u8; MAGIC_LEN] {
        match self {
            Cipher::XChaCha20Poly1305 => b"MDY1",
            Cipher::XAes256Gcm => b"MDY2",
        }
    }

    /// The cipher of a sealed blob, by its magic, and the rest of it.
    fn of_blob(sealed: &[u8]) -> Option<(Cipher, &[u8])> {
        Cipher::ALL
            .into_iter()
            .find_map(|cipher| Some((cipher, sealed.strip_prefix(cipher.magic())?)))
    }

    /// The 96-bit-nonce AEAD and its nonce for `key` and the 192-bit `nonce`.
    fn aead(self, key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
        match self {
            Cipher::XChaCha20Poly1305 => xchacha(key, nonce),
            Cipher::XAes256Gcm => xaes(key, nonce),
        }
    }
}

/// One report's data key.
pub struct DataKey([u8; KEY_LEN]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random data key.
    pub fn generate() -> DataKey {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        DataKey(key)
    }

    /// Encrypts `plain`, bound to `aad` (the blob's store key).
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(SEAL_HEADROOM + plain.len() + SEAL_TAG);
        buf.resize(SEAL_HEADROOM, 0);
        buf.extend_from_slice(plain);
        self.seal_in_place(aad, &mut buf);
        buf
    }

    /// Encrypts `buf[SEAL_HEADROOM..]` where it lies, into the same blob
    /// [`DataKey::seal`] makes: the header goes into the first
    /// [`SEAL_HEADROOM`] bytes and the tag is appended. A large dump is sealed
    /// without a second copy of it in memory.
    ///
    /// # Panics
    /// When `buf` is shorter than [`SEAL_HEADROOM`].
    pub fn seal_in_place(&self, aad: &str, buf: &mut Vec<u8>) {
        self.seal_in_place_at(aad, buf, 0);
    }

    /// [`DataKey::seal_in_place`] of `buf[at..]`: `buf[..at]` stays as it is,
    /// the blob starts at `at`.
    ///
    /// # Panics
    /// When `buf` is shorter than `at` + [`SEAL_HEADROOM`].
    pub fn seal_in_place_at(&self, aad: &str, buf: &mut Vec<u8>, at: usize) {
        self.seal_in_place_with(Cipher::CURRENT, aad, buf, at);
    }

    /// [`DataKey::seal_in_place_at`] with `cipher` (the blobs of before, in
    /// tests).
    fn seal_in_place_with(&self, cipher: Cipher, aad: &str, buf: &mut Vec<u8>, at: usize) {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let (head, body) = buf[at..].split_at_mut(SEAL_HEADROOM);
        head[..MAGIC_LEN].copy_from_slice(cipher.magic());
        head[MAGIC_LEN..].copy_from_slice(&nonce);
        let tag = seal_body(cipher, &self.0, &nonce, aad.as_bytes(), body);
        buf.extend_from_slice(&tag);
    }

    /// [`DataKey::seal`] with `cipher`: a blob of the form sealed before, for
    /// tests that it still opens.
    #[cfg(test)]
    pub(crate) fn seal_with(&self, cipher: Cipher, aad: &str, plain: &[u8]) -> Vec<u8> {
        let mut buf = vec![0; SEAL_HEADROOM];
        buf.extend_from_slice(plain);
        self.seal_in_place_with(cipher, aad, &mut buf, 0);
        buf
    }

    /// Decrypts a blob made by [`DataKey::seal`] with the same `aad` (or one
    /// sealed before with XChaCha20-Poly1305).
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (cipher, body) = Cipher::of_blob(sealed).ok_or(CryptoError::Format)?;
        open_raw(cipher, &self.0, aad.as_bytes(), body)
    }

    /// [`DataKey::open`] where the blob lies: its plaintext is written over
    /// `sealed`, and is the part of it returned.
    pub fn open_in_place<'a>(
        &self,
        aad: &str,
        sealed: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        let (cipher, _) = Cipher::of_blob(sealed).ok_or(CryptoError::Format)?;
        let body = &mut sealed[cipher.magic().len()..];
        if body.len() < NONCE_LEN + SEAL_TAG {
            return Err(CryptoError::Format);
        }
        let (nonce, body) = body.split_at_mut(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = (&*nonce).try_into().map_err(|_| CryptoError::Format)?;
        let (aead, nonce) = cipher.aead(&self.0, &nonce);
        aead.open_in_place(nonce, Aad::from(aad.as_bytes()), body)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Bytes of the random part of a chunked blob's nonces ([`ChunkSealer`]).
pub const CHUNK_NONCE_PREFIX: usize = NONCE_LEN - 5;

impl DataKey {
    /// A sealer of a new chunked blob under this key with `cipher`
    /// ([`Cipher::CURRENT`] but in tests), with a random nonce prefix.
    pub fn chunk_sealer(&self, cipher: Cipher) -> ChunkSealer {
        let mut prefix = [0u8; CHUNK_NONCE_PREFIX];
        rand::rng().fill_bytes(&mut prefix);
        self.chunk_opener(cipher, prefix)
    }

    /// An opener of the chunked blob sealed with `cipher` whose nonces start
    /// with `prefix`.
    pub fn chunk_opener(&self, cipher: Cipher, prefix: [u8; CHUNK_NONCE_PREFIX]) -> ChunkSealer {
        ChunkSealer {
            cipher,
            key: self.0,
            prefix,
            next: 0,
        }
    }
}

/// Seals (or opens) a blob a chunk at a time, in order, as the STREAM
/// construction does: chunk `i`'s nonce is the blob's random prefix, `i` (`u32`
/// big-endian) and a byte that is 1 on the last chunk, so chunks cannot be
/// reordered, dropped or cut off after the last without failing to open.
pub struct ChunkSealer {
    cipher: Cipher,
    key: [u8; KEY_LEN],
    prefix: [u8; CHUNK_NONCE_PREFIX],
    next: u32,
}

impl std::fmt::Debug for ChunkSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSealer")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ChunkSealer {
    /// The random part of the blob's nonces, stored with it.
    pub fn prefix(&self) -> [u8; CHUNK_NONCE_PREFIX] {
        self.prefix
    }

    fn nonce(&mut self, last: bool) -> Result<[u8; NONCE_LEN], CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..CHUNK_NONCE_PREFIX].copy_from_slice(&self.prefix);
        nonce[CHUNK_NONCE_PREFIX..NONCE_LEN - 1].copy_from_slice(&self.next.to_be_bytes());
        nonce[NONCE_LEN - 1] = u8::from(last);
        self.next = self.next.checked_add(1).ok_or(CryptoError::Format)?;
        Ok(nonce)
    }

    /// Seals the next chunk, `buf`, where it lies (its tag appended), bound to
    /// `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Format`] past 2³² chunks.
    pub fn seal(&mut self, aad: &str, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        let nonce = self.nonce(last)?;
        let tag = seal_body(self.cipher, &self.key, &nonce, aad.as_bytes(), buf);
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens the next chunk, `buf` (sealed, with its tag), where it lies.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] when it is not the next chunk (or not the
    /// last one when `last`) of a blob sealed under this key and prefix.
    pub fn open(&mut self, aad: &str, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        let nonce = self.nonce(last)?;
        let (cipher, nonce) = self.cipher.aead(&self.key, &nonce);
        let len = cipher
            .open_in_place(nonce, Aad::from(aad.as_bytes()), buf)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(())
    }
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03): ChaCha20-Poly1305 under the
/// HChaCha20 subkey of `key` and the nonce's first 16 bytes, with 4 zero bytes
/// and the nonce's last 8 as its nonce. The cipher of `chacha20poly1305`'s
/// `XChaCha20Poly1305`, which sealed the blobs stored before (a test checks
/// that both make the same bytes), with ring's ChaCha20-Poly1305 underneath:
/// about twice as fast on the 0.1–4 MB blobs of a report.
fn xchacha(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let mut input = [0u8; 16];
    input.copy_from_slice(&nonce[..16]);
    let subkey = chacha20::hchacha::<U10>(&(*key).into(), &input.into());
    let cipher = UnboundKey::new(&CHACHA20_POLY1305, &subkey)
        .map(LessSafeKey::new)
        .expect("a 32-byte key");
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(&nonce[16..]);
    (cipher, Nonce::assume_unique_for_key(short))
}

/// XAES-256-GCM (c2sp.org/XAES-256-GCM): AES-256-GCM under the subkey
/// AES-256(key, M1 ⊕ K1) ‖ AES-256(key, M2 ⊕ K1), where K1 is CMAC's first
/// subkey of `key` and Mi is `0x00 i 'X' 0x00` ‖ the nonce's first 12 bytes
/// (the SP 800-108 counter-mode CMAC KDF), with the nonce's last 12 bytes as
/// its nonce. Checked against the specification's vectors.
fn xaes(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let aes = aes::Aes256::new(key.into());
    let mut l = aes::Block::default();
    aes.encrypt_block(&mut l);
    // K1 = L·x in GF(2^128): L shifted left a bit, 0x87 folded in on carry.
    let mut k1 = [0u8; 16];
    for i in 0..16 {
        k1[i] = (l[i] << 1) | l.get(i + 1).map_or(0, |next| next >> 7);
    }
    k1[15] ^= 0x87 * (l[0] >> 7);
    let mut subkey = [0u8; KEY_LEN];
    for (i, half) in subkey.chunks_exact_mut(16).enumerate() {
        let mut m = aes::Block::default();
        m[1] = i as u8 + 1;
        m[2] = b'X';
        m[4..].copy_from_slice(&nonce[..12]);
        for (byte, k) in m.iter_mut().zip(k1) {
            *byte ^= k;
        }
        aes.encrypt_block(&mut m);
        half.copy_from_slice(&m);
    }
    let cipher = UnboundKey::new(&AES_256_GCM, &subkey)
        .map(LessSafeKey::new)
        .expect("a 32-byte key");
    let mut short = [0u8; 12];
    short.copy_from_slice(&nonce[12..]);
    (cipher, Nonce::assume_unique_for_key(short))
}

/// Encrypts `body` in place with `cipher` under `key` and `nonce`, bound to
/// `aad`; the tag.
fn seal_body(
    cipher: Cipher,
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    body: &mut [u8],
) -> [u8; SEAL_TAG] {
    let (cipher, nonce) = cipher.aead(key, nonce);
    let mut out = [0u8; SEAL_TAG];
    // Only fails for messages beyond 256 GiB, far over any upload limit; the
    // zero tag then makes a blob that never opens.
    if let Ok(tag) = cipher.seal_in_place_separate_tag(nonce, Aad::from(aad), body) {
        out.copy_from_slice(tag.as_ref());
    }
    out
}

/// `nonce ‖ ciphertext+tag` of `plain` under `key`, bound to `aad`: a wrapped
/// data key (XChaCha20-Poly1305; its form has no magic to say another).
fn seal_raw(key: &[u8; KEY_LEN], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + SEAL_TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = seal_body(
        Cipher::XChaCha20Poly1305,
        key,
        &nonce,
        aad,
        &mut out[NONCE_LEN..],
    );
    out.extend_from_slice(&tag);
    out
}

/// Opens `nonce ‖ ciphertext+tag` sealed with `cipher` under `key` and `aad`
/// (made by [`seal_raw`], or a blob's after its magic).
fn open_raw(
    cipher: Cipher,
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + SEAL_TAG {
        return Err(CryptoError::Format);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Format)?;
    let (cipher, nonce) = cipher.aead(key, &nonce);
    let mut plain = body.to_vec();
    let len = cipher
        .open_in_place(nonce, Aad::from(aad), &mut plain)
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    plain.truncate(len);
    Ok(plain)
}

fn read_key_file(path: &Path) -> Result<Option<MasterKey>, CryptoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_hex(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `key` to a new file at `path`, readable by its owner only, and syncs it.
/// Fails with `AlreadyExists` when the file is there.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), CryptoError> {
    use std::io::Write;
    let fail = |source| CryptoError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .map_err(fail)?;
    file.sync_all().map_err(fail)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_opens_where_it_lies_as_it_opens_into_a_copy() {
        let key = DataKey::generate();
        for cipher in Cipher::ALL {
            let mut sealed = key.seal_with(cipher, "raw/x.dmp", b"a dump, opened where it lies");
            let plain = key.open("raw/x.dmp", &sealed).unwrap();
            assert!(key.open_in_place("raw/y.dmp", &mut sealed.clone()).is_err());
            for cut in [0, MAGIC_LEN, MAGIC_LEN + NONCE_LEN + SEAL_TAG - 1] {
                assert!(
                    key.open_in_place("raw/x.dmp", &mut sealed[..cut].to_vec())
                        .is_err()
                );
            }
            assert_eq!(
                key.open_in_place("raw/x.dmp", &mut sealed).unwrap(),
                &plain[..]
            );
        }
    }

    #[test]
    fn sealing_in_place_makes_a_blob_that_opens() {
        let key = DataKey::generate();
        let mut buf = vec![0u8; SEAL_HEADROOM];
        buf.extend_from_slice(b"a dump, sealed where it lies");
        key.seal_in_place("raw/x.dmp", &mut buf);
        assert_eq!(
            key.open("raw/x.dmp", &buf).unwrap(),
            b"a dump, sealed where it lies"
        );
        assert!(key.open("raw/y.dmp", &buf).is_err());

        // After a header of the caller's, kept as it is.
        let mut buf = b"HEAD".to_vec();
        buf.resize(4 + SEAL_HEADROOM, 0);
        buf.extend_from_slice(b"the rest");
        key.seal_in_place_at("raw/x.dmp", &mut buf, 4);
        assert_eq!(&buf[..4], b"HEAD");
        assert_eq!(key.open("raw/x.dmp", &buf[4..]).unwrap(), b"the rest");
    }

    /// Blobs stored before (sealed by `chacha20poly1305`'s XChaCha20-Poly1305)
    /// open, and what is sealed with that cipher opens with it: one cipher,
    /// whichever implementation.
    #[test]
    fn earlier_blobs_are_the_reference_xchacha20_poly1305() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

        let key = DataKey::generate();
        let reference = XChaCha20Poly1305::new(&Key::from(key.0));
        for len in [0, 1, 63, 64, 65, 4096, 100_003] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let sealed = key.seal_with(Cipher::XChaCha20Poly1305, "reports/x.json", &plain);
            let body = sealed.strip_prefix(b"MDY1").unwrap();
            let (nonce, ciphertext) = body.split_at(NONCE_LEN);
            let payload = Payload {
                msg: ciphertext,
                aad: b"reports/x.json",
            };
            let nonce: [u8; NONCE_LEN] = nonce.try_into().unwrap();
            let opened = reference.decrypt(&XNonce::from(nonce), payload);
            assert_eq!(opened.unwrap(), plain, "{len} bytes");

            let nonce = [len as u8; NONCE_LEN];
            let payload = Payload {
                msg: &plain,
                aad: b"raw/x.dmp",
            };
            let old = reference.encrypt(&XNonce::from(nonce), payload).unwrap();
            let blob = [b"MDY1".as_slice(), &nonce, &old].concat();
            assert_eq!(key.open("raw/x.dmp", &blob).unwrap(), plain, "{len} bytes");
        }
    }

    /// The vectors of c2sp.org/XAES-256-GCM, through a blob's form.
    #[test]
    fn blobs_are_xaes_256_gcm() {
        let vectors = [
            (
                [1u8; KEY_LEN],
                "",
                "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                [3u8; KEY_LEN],
                "c2sp.org/XAES-256-GCM",
                "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
            ),
        ];
        let nonce: &[u8; NONCE_LEN] = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        for (key, aad, expected) in vectors {
            let mut body = b"XAES-256-GCM".to_vec();
            let tag = seal_body(Cipher::XAes256Gcm, &key, nonce, aad.as_bytes(), &mut body);
            body.extend_from_slice(&tag);
            assert_eq!(hex::encode(&body), expected);
            let blob = [b"MDY2".as_slice(), nonce, &body].concat();
            let opened = DataKey(key).open(aad, &blob).unwrap();
            assert_eq!(opened, b"XAES-256-GCM");
            assert!(DataKey(key).open("elsewhere", &blob).is_err());
        }
        // What is sealed now is of this form; the earlier one opens too.
        let key = DataKey::generate();
        let now = key.seal("raw/x.dmp", b"bytes");
        assert!(now.starts_with(b"MDY2"));
        let before = key.seal_with(Cipher::XChaCha20Poly1305, "raw/x.dmp", b"bytes");
        assert!(before.starts_with(b"MDY1"));
        for blob in [now, before] {
            assert_eq!(key.open("raw/x.dmp", &blob).unwrap(), b"bytes");
        }
    }

    /// A chunked blob opens only chunk after chunk, in order, to the last one,
    /// with the cipher it was sealed with.
    #[test]
    fn chunked_blobs_open_in_order_with_their_cipher() {
        let key = DataKey::generate();
        for cipher in Cipher::ALL {
            let mut sealer = key.chunk_sealer(cipher);
            let mut chunks = Vec::new();
            for (i, text) in [&b"one"[..], b"two", b"three"].into_iter().enumerate() {
                let mut buf = text.to_vec();
                sealer.seal("raw/x.dmp", &mut buf, i == 2).unwrap();
                chunks.push(buf);
            }
            let open = |cipher, order: &[usize]| {
                let mut opener = key.chunk_opener(cipher, sealer.prefix());
                order
                    .iter()
                    .enumerate()
                    .try_fold(Vec::new(), |mut all, (n, &i)| {
                        let mut buf = chunks[i].clone();
                        opener.open("raw/x.dmp", &mut buf, n == order.len() - 1)?;
                        all.extend_from_slice(&buf);
                        Ok::<_, CryptoError>(all)
                    })
            };
            assert_eq!(open(cipher, &[0, 1, 2]).unwrap(), b"onetwothree");
            assert!(open(cipher, &[1, 0, 2]).is_err(), "reordered");
            assert!(open(cipher, &[0, 1]).is_err(), "cut off");
            let other = match cipher {
                Cipher::XAes256Gcm => Cipher::XChaCha20Poly1305,
                Cipher::XChaCha20Poly1305 => Cipher::XAes256Gcm,
            };
            assert!(open(other, &[0, 1, 2]).is_err(), "another cipher");
        }
    }

    #[test]
    fn sealed_blobs_open_only_with_their_key_and_place() {
        let key = DataKey::generate();
        let sealed = key.seal("raw/a.dmp", b"MDMP secret bytes");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open("raw/a.dmp", &sealed).unwrap(),
            b"MDMP secret bytes"
        );
        assert!(matches!(
            key.open("raw/b.dmp", &sealed),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            DataKey::generate().open("raw/a.dmp", &sealed),
            Err(CryptoError::Decrypt)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(key.open("raw/a.dmp", &flipped).is_err());
    }

    #[test]
    fn wrapped_keys_unwrap_with_the_master_key_that_wrapped_them() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let data = DataKey::generate();
        let wrapped = old.wrap(&data, "bp-1");
        let sealed = data.seal("k", b"hello");
        let ring = Keyring::new(old.clone());
        let back = ring.unwrap(&wrapped, "bp-1").unwrap();
        assert_eq!(back.open("k", &sealed).unwrap(), b"hello");
        assert!(
            ring.unwrap(&wrapped, "bp-2").is_err(),
            "bound to the report"
        );
        assert!(matches!(
            Keyring::new(new).unwrap(&wrapped, "bp-1"),
            Err(CryptoError::UnknownMasterKey(_))
        ));
        assert_eq!(MasterKey::from_hex(&old.to_hex()).unwrap().id(), old.id());
        assert!(MasterKey::from_hex("abcd").is_err());
    }
}
