//! Checkpoints of the log's Merkle tree: C2SP tlog-checkpoint bodies
//! (origin, tree size, base64 root), signed as C2SP signed notes with the
//! log key (Ed25519, signature type 0x01), their verification against a
//! note verifier key (`name+hexkeyid+base64(0x01‖public key)`), and C2SP
//! tlog-proof receipts (an inclusion proof with its checkpoint).
//!
//! `LogSigner` is the seam an HSM or KMS fills; `LogKey` is the file
//! implementation (a PKCS#8 PEM key, like the seal keys).
//!
//! Must never: accept a note whose known signature fails, or none of whose
//! signatures is by the expected key; or sign a body it did not build.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer as _, SigningKey};
use signed_note::{Note, StandardVerifier, VerifierList};

use super::merkle::{self, Hash};

/// Why a checkpoint, a key or a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("the log key: {0}")]
    Key(String),
    #[error("not a signed note: {0}")]
    Malformed(String),
    #[error("the checkpoint is not signed by {key}: {why}")]
    Signature { key: String, why: String },
    #[error("not a checkpoint: {0}")]
    Body(String),
    #[error("the checkpoint is for origin {found:?}, the log key for {expected:?}")]
    Origin { expected: String, found: String },
    #[error("not a tlog proof: {0}")]
    Proof(String),
    #[error("the signing device failed: {0}")]
    Device(String),
}

/// A tree head as a checkpoint states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `vanthu.example.gov.vn/log`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// MTH of the first `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (tlog-checkpoint): three non-empty lines,
    /// then extension lines, which are kept out of the result.
    pub fn parse_body(text: &[u8]) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Body(why.to_owned());
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        if origin.is_empty() {
            return Err(bad("empty origin line"));
        }
        let digits = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
        if !digits || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("the tree size is not a decimal without leading zeros"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("the tree size is too large"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        if lines.any(str::is_empty) {
            return Err(bad("an empty extension line"));
        }
        if size == 0 && root != merkle::empty_root() {
            return Err(bad("an empty tree with a root other than SHA-256(\"\")"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Signs checkpoints: the log key, wherever it lives. Its name is the
/// log's origin.
pub trait LogSigner: Send + Sync {
    /// The key name (the origin).
    fn name(&self) -> &str;
    /// The raw Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], NoteError>;

    /// The note verifier key: `name+hexkeyid+base64(0x01‖public key)`.
    fn verifier_key(&self) -> String {
        verifier_key(self.name(), &self.public_key())
    }
}

/// A log key read from a PKCS#8 PEM file.
pub struct LogKey {
    name: String,
    key: SigningKey,
}

impl LogKey {
    /// `origin` names the key (C2SP: no spaces, no `+`).
    pub fn load(path: &Path, origin: &str) -> Result<Self, NoteError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| NoteError::Key(format!("{}: {e}", path.display())))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| NoteError::Key(format!("{}: {e}", path.display())))?;
        Self::new(origin, key)
    }

    /// A log key from its secret.
    pub fn new(origin: &str, key: SigningKey) -> Result<Self, NoteError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(NoteError::Key(format!(
                "{origin:?} cannot name a note key (empty, a space or a '+')"
            )));
        }
        Ok(Self {
            name: origin.to_owned(),
            key,
        })
    }
}

impl LogSigner for LogKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], NoteError> {
        Ok(self.key.sign(message).to_bytes())
    }
}

/// The note key ID of an Ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4].
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut typed = vec![0x01];
    typed.extend_from_slice(public);
    signed_note::key_id(name, &typed)
}

/// The note verifier key of an Ed25519 key.
pub fn verifier_key(name: &str, public: &[u8; 32]) -> String {
    let mut typed = vec![0x01];
    typed.extend_from_slice(public);
    format!("{name}+{:08x}+{}", key_id(name, public), B64.encode(typed))
}

/// `signed_note`'s view of a log signer.
struct NoteSigner<'a>(&'a dyn LogSigner);

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn key_id(&self) -> u32 {
        key_id(self.0.name(), &self.0.public_key())
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::ed25519::signature::Error> {
        self.0
            .sign(msg)
            .map(|s| s.to_vec())
            .map_err(ed25519_dalek::ed25519::signature::Error::from_source)
    }
}

/// Signs `checkpoint` as a note: its body, a blank line, one signature line.
pub fn sign(checkpoint: &Checkpoint, signer: &dyn LogSigner) -> Result<Vec<u8>, NoteError> {
    if checkpoint.origin != signer.name() {
        return Err(NoteError::Origin {
            expected: signer.name().to_owned(),
            found: checkpoint.origin.clone(),
        });
    }
    let mut note = Note::new(checkpoint.body().as_bytes(), &[])
        .map_err(|e| NoteError::Malformed(e.to_string()))?;
    note.add_sigs(&[&NoteSigner(signer)])
        .map_err(|e| NoteError::Device(e.to_string()))?;
    Ok(note.to_bytes())
}

/// Adds `signer`'s signature to a signed checkpoint whose body is its own
/// (a new log key taking over: the last checkpoint carries both keys'
/// signatures, so monitors can move from the old key to the new one).
pub fn cosign(note: &[u8], signer: &dyn LogSigner) -> Result<Vec<u8>, NoteError> {
    let mut parsed = Note::from_bytes(note).map_err(|e| NoteError::Malformed(e.to_string()))?;
    let checkpoint = Checkpoint::parse_body(parsed.text())?;
    if checkpoint.origin != signer.name() {
        return Err(NoteError::Origin {
            expected: signer.name().to_owned(),
            found: checkpoint.origin,
        });
    }
    parsed
        .add_sigs(&[&NoteSigner(signer)])
        .map_err(|e| NoteError::Device(e.to_string()))?;
    Ok(parsed.to_bytes())
}

/// The name of verifier key `vkey` (`name+id+key`), if it is one.
pub fn verifier_name(vkey: &str) -> Result<String, NoteError> {
    StandardVerifier::new(vkey)
        .map(|v| signed_note::Verifier::name(&v).to_owned())
        .map_err(|e| NoteError::Key(format!("the verifier key {vkey:?}: {e}")))
}

/// Opens a signed checkpoint: a valid note, signed by the key `vkey`
/// (signatures by other keys are ignored), whose origin is the key's name.
pub fn open(note: &[u8], vkey: &str) -> Result<Checkpoint, NoteError> {
    let verifier = StandardVerifier::new(vkey)
        .map_err(|e| NoteError::Key(format!("the verifier key {vkey:?}: {e}")))?;
    let name = signed_note::Verifier::name(&verifier).to_owned();
    let note = Note::from_bytes(note).map_err(|e| NoteError::Malformed(e.to_string()))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| NoteError::Signature {
            key: name.clone(),
            why: e.to_string(),
        })?;
    let checkpoint = Checkpoint::parse_body(note.text())?;
    if checkpoint.origin != name {
        return Err(NoteError::Origin {
            expected: name,
            found: checkpoint.origin,
        });
    }
    Ok(checkpoint)
}

/// The first line of a C2SP tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A C2SP tlog-proof: leaf `index`'s inclusion proof in the tree of a
/// signed checkpoint, with that checkpoint verbatim.
pub fn tlog_proof(index: u64, proof: &[Hash], checkpoint_note: &[u8]) -> String {
    let mut out = format!("{TLOG_PROOF_HEADER}\nindex {index}\n");
    for h in proof {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(checkpoint_note));
    out
}

/// A parsed tlog-proof, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

/// Parses a tlog-proof (the `extra` line is accepted and ignored: it is
/// not authenticated).
pub fn parse_tlog_proof(text: &str) -> Result<TlogProof, NoteError> {
    let bad = |why: &str| NoteError::Proof(why.to_owned());
    let rest = text
        .strip_prefix(TLOG_PROOF_HEADER)
        .and_then(|r| r.strip_prefix('\n'))
        .ok_or_else(|| bad("the first line is not c2sp.org/tlog-proof@v1"))?;
    let rest = match rest.strip_prefix("extra ") {
        Some(r) => r.split_once('\n').map(|(_, r)| r).unwrap_or_default(),
        None => rest,
    };
    let (index, mut rest) = rest
        .strip_prefix("index ")
        .and_then(|r| r.split_once('\n'))
        .ok_or_else(|| bad("no index line"))?;
    if index.is_empty()
        || !index.bytes().all(|b| b.is_ascii_digit())
        || (index.len() > 1 && index.starts_with('0'))
    {
        return Err(bad("the index is not a decimal without leading zeros"));
    }
    let index = index.parse().map_err(|_| bad("the index is too large"))?;
    let mut proof = Vec::new();
    loop {
        let (line, r) = rest
            .split_once('\n')
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        rest = r;
        if line.is_empty() {
            break;
        }
        let hash: Hash = B64
            .decode(line)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| bad("a proof line is not 32 bytes of base64"))?;
        proof.push(hash);
    }
    Ok(TlogProof {
        index,
        proof,
        checkpoint: rest.as_bytes().to_vec(),
    })
}

/// Verifies a tlog-proof for a leaf: the checkpoint is signed by `vkey`,
/// and `leaf` is leaf `proof.index` of its tree.
pub fn verify_tlog_proof(
    proof: &TlogProof,
    leaf: &Hash,
    vkey: &str,
) -> Result<Checkpoint, NoteError> {
    let checkpoint = open(&proof.checkpoint, vkey)?;
    merkle::verify_inclusion(
        proof.index,
        checkpoint.size,
        leaf,
        &proof.proof,
        &checkpoint.root,
    )
    .map_err(|e| NoteError::Proof(format!("leaf {}: {e}", proof.index)))?;
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C2SP signed-note's example key and signature (verified independently
    /// with Python's `cryptography`, reference notes §6.2).
    const EXAMPLE_VKEY: &str =
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";

    fn dev_signer(origin: &str) -> LogKey {
        LogKey::new(origin, SigningKey::from_bytes(&[7u8; 32])).unwrap()
    }

    #[test]
    fn the_c2sp_example_note_verifies_and_its_tampering_does_not() {
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let verifiers =
            || VerifierList::new(vec![Box::new(StandardVerifier::new(EXAMPLE_VKEY).unwrap())]);
        let parsed = Note::from_bytes(note.as_bytes()).unwrap();
        assert!(parsed.verify(&verifiers()).is_ok());
        let tampered = note.replace("example message", "example massage");
        let parsed = Note::from_bytes(tampered.as_bytes()).unwrap();
        assert!(parsed.verify(&verifiers()).is_err());
        // Not a checkpoint, so `open` refuses it after the signature.
        assert!(matches!(
            open(note.as_bytes(), EXAMPLE_VKEY),
            Err(NoteError::Body(_))
        ));
    }

    #[test]
    fn key_ids_and_verifier_keys_follow_c2sp() {
        let (name, id, b64) = {
            let mut p = EXAMPLE_VKEY.split('+');
            (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
        };
        let typed = B64.decode(b64).unwrap();
        assert_eq!(typed[0], 0x01);
        let public: [u8; 32] = typed[1..].try_into().unwrap();
        assert_eq!(format!("{:08x}", key_id(name, &public)), id);
        assert_eq!(verifier_key(name, &public), EXAMPLE_VKEY);
        let signer = dev_signer("vanthu.example/log");
        assert!(StandardVerifier::new(&signer.verifier_key()).is_ok());
    }

    #[test]
    fn a_signed_checkpoint_opens_and_any_flipped_byte_fails() {
        let signer = dev_signer("vanthu.example/log");
        let cp = Checkpoint {
            origin: "vanthu.example/log".into(),
            size: 70_000,
            root: merkle::leaf_hash(b"x"),
        };
        let note = sign(&cp, &signer).unwrap();
        let text = String::from_utf8(note.clone()).unwrap();
        assert!(text.starts_with("vanthu.example/log\n70000\n"));
        assert!(text.contains("\n\n— vanthu.example/log "));
        assert_eq!(open(&note, &signer.verifier_key()).unwrap(), cp);
        for i in 0..note.len() {
            let mut bad = note.clone();
            bad[i] ^= 0x01;
            assert!(
                open(&bad, &signer.verifier_key()).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
        // Another key with the same name, and another name, are refused.
        let other = LogKey::new("vanthu.example/log", SigningKey::from_bytes(&[8u8; 32])).unwrap();
        assert!(open(&note, &other.verifier_key()).is_err());
        assert!(open(&note, EXAMPLE_VKEY).is_err());
        // A new key taking over co-signs: both keys open the note.
        let both = cosign(&note, &other).unwrap();
        assert_eq!(open(&both, &signer.verifier_key()).unwrap(), cp);
        assert_eq!(open(&both, &other.verifier_key()).unwrap(), cp);
        // A checkpoint for another origin is not signed.
        let wrong = Checkpoint {
            origin: "elsewhere/log".into(),
            ..cp
        };
        assert!(matches!(
            sign(&wrong, &signer),
            Err(NoteError::Origin { .. })
        ));
    }

    #[test]
    fn checkpoint_bodies_are_read_strictly() {
        let root = B64.encode(merkle::empty_root());
        let ok = format!("o\n0\n{root}\n");
        assert_eq!(Checkpoint::parse_body(ok.as_bytes()).unwrap().size, 0);
        let ext = format!("o\n5\n{root}\next line\n");
        assert_eq!(Checkpoint::parse_body(ext.as_bytes()).unwrap().size, 5);
        for bad in [
            format!("o\n05\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n5\n{root}"),
            format!("\n5\n{root}\n"),
            "o\n5\nAAAA\n".to_owned(),
            format!("o\n0\n{}\n", B64.encode([1u8; 32])),
            format!("o\n5\n{root}\n\n"),
            "o\n5\n".to_owned(),
        ] {
            assert!(Checkpoint::parse_body(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_tlog_proof_round_trips_and_binds_leaf_index_and_checkpoint() {
        let signer = dev_signer("vanthu.example/log");
        let leaves: Vec<Hash> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let Ok(root) = merkle::root(&leaves[..], 5);
        let cp = Checkpoint {
            origin: signer.name().into(),
            size: 5,
            root,
        };
        let note = sign(&cp, &signer).unwrap();
        let Ok(path) = merkle::inclusion_proof(&leaves[..], 3, 5);
        let text = tlog_proof(3, &path, &note);
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 3\n"));
        let parsed = parse_tlog_proof(&text).unwrap();
        let vkey = signer.verifier_key();
        assert_eq!(verify_tlog_proof(&parsed, &leaves[3], &vkey).unwrap(), cp);
        assert!(verify_tlog_proof(&parsed, &leaves[2], &vkey).is_err());
        let moved = TlogProof {
            index: 2,
            ..parsed.clone()
        };
        assert!(verify_tlog_proof(&moved, &leaves[3], &vkey).is_err());
        let with_extra = text.replacen("\nindex", "\nextra AAAA\nindex", 1);
        assert_eq!(parse_tlog_proof(&with_extra).unwrap(), parsed);
        for bad in [
            text.replacen("index 3", "index 03", 1),
            text.replacen("@v1", "@v2", 1),
            text.replacen("\n\n", "\n", 1),
        ] {
            let refused = parse_tlog_proof(&bad)
                .and_then(|p| verify_tlog_proof(&p, &leaves[3], &vkey))
                .is_err();
            assert!(refused, "{bad}");
        }
    }
}
