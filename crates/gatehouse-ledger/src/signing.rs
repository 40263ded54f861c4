//! Signed checkpoints: the chain head signed with the data directory's Ed25519 key, stored in
//! the `checkpoints` table and exportable as JSON, so the head can be anchored somewhere an
//! attacker who rewrites the ledger file cannot reach.
//!
//! Signed message (version 1):
//! `"gatehouse.ledger.checkpoint.v1\0" || u64be(chain_seq) || head_hash[32] || i64be(created_at_ms)`.
//!
//! The key file holds the 32-byte secret seed in hex; it is created with mode 0600.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::LedgerError;
use crate::chain::ChainHead;

const DOMAIN: &[u8] = b"gatehouse.ledger.checkpoint.v1\0";

/// A signed statement: "the chain had `chain_seq` entries and its head hash was `head_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub chain_seq: i64,
    #[serde(with = "hex32")]
    pub head_hash: [u8; 32],
    pub created_at_ms: i64,
    #[serde(with = "hex32")]
    pub public_key: [u8; 32],
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    fn message(chain_seq: i64, head_hash: &[u8; 32], created_at_ms: i64) -> Vec<u8> {
        let mut message = Vec::with_capacity(DOMAIN.len() + 48);
        message.extend_from_slice(DOMAIN);
        message.extend_from_slice(&(chain_seq as u64).to_be_bytes());
        message.extend_from_slice(head_hash);
        message.extend_from_slice(&created_at_ms.to_be_bytes());
        message
    }

    pub(crate) fn sign(key: &SigningKey, head: ChainHead, created_at_ms: i64) -> Checkpoint {
        let signature = key.sign(&Self::message(head.seq, &head.hash, created_at_ms));
        Checkpoint {
            chain_seq: head.seq,
            head_hash: head.hash,
            created_at_ms,
            public_key: key.verifying_key().to_bytes(),
            signature: signature.to_bytes(),
        }
    }

    /// Checks the signature against the checkpoint's own public key.
    pub fn verify_signature(&self) -> Result<(), String> {
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|e| e.to_string())?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify(
            &Self::message(self.chain_seq, &self.head_hash, self.created_at_ms),
            &signature,
        )
        .map_err(|e| e.to_string())
    }
}

pub(crate) fn checkpoint_from_row(row: &Row<'_>) -> rusqlite::Result<Checkpoint> {
    fn fixed<const N: usize>(row: &Row<'_>, index: usize) -> rusqlite::Result<[u8; N]> {
        let bytes: Vec<u8> = row.get(index)?;
        bytes.try_into().map_err(|_| {
            rusqlite::Error::InvalidColumnType(
                index,
                "fixed-size blob".into(),
                rusqlite::types::Type::Blob,
            )
        })
    }
    Ok(Checkpoint {
        chain_seq: row.get(1)?,
        head_hash: fixed(row, 2)?,
        created_at_ms: row.get(3)?,
        public_key: fixed(row, 4)?,
        signature: fixed(row, 5)?,
    })
}

pub(crate) fn insert(conn: &Connection, checkpoint: &Checkpoint) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (chain_seq, head_hash, created_at_ms, public_key, signature)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        checkpoint.chain_seq,
        &checkpoint.head_hash[..],
        checkpoint.created_at_ms,
        &checkpoint.public_key[..],
        &checkpoint.signature[..],
    ])?;
    Ok(())
}

/// The most recent stored checkpoint.
pub(crate) fn latest(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        "SELECT seq, chain_seq, head_hash, created_at_ms, public_key, signature
         FROM checkpoints ORDER BY seq DESC LIMIT 1",
        [],
        checkpoint_from_row,
    )
    .optional()
}

/// Loads the signing key, creating it (mode 0600) if the file does not exist.
pub(crate) fn load_or_create_key(path: &Path) -> Result<SigningKey, LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(path, &text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|err| LedgerError::Key(format!("no randomness for a new key: {err}")))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            file.write_all(format!("{}\n", hex(&seed)).as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created the ledger's checkpoint signing key");
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(err) => Err(err.into()),
    }
}

/// The public half of the key in `path`, if the file exists.
pub fn public_key(path: &Path) -> Result<Option<[u8; 32]>, LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse_key(path, &text)?.verifying_key().to_bytes())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn parse_key(path: &Path, text: &str) -> Result<SigningKey, LedgerError> {
    let seed: [u8; 32] = unhex(text.trim())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            LedgerError::Key(format!(
                "{} does not hold a 32-byte key in hex",
                path.display()
            ))
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

macro_rules! hex_serde {
    ($name:ident, $n:literal) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer, de::Error};

            pub fn serialize<S: Serializer>(bytes: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&super::hex(bytes))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let text = String::deserialize(d)?;
                super::unhex(&text)
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| D::Error::custom(concat!("expected ", $n, " bytes in hex")))
            }
        }
    };
}
hex_serde!(hex32, 32);
hex_serde!(hex64, 64);
