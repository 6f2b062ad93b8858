//! Compact JWS (RFC 7515) with `alg: EdDSA` (RFC 8037, Ed25519), and the
//! RFC 8785 canonical JSON the signed payloads are made of.
//!
//! A signature is `b64url(header) . b64url(payload) . b64url(sig)` where the
//! protected header is `{"alg":"EdDSA","iat":…,"x5c":[…]}` (x5c: standard
//! base64 DER, signer's certificate first) and the payload is canonical JSON.
//! Any standard JOSE library verifies it.
//!
//! Must never: accept an algorithm other than EdDSA, a `crit` header it does
//! not understand, an unencoded (`b64: false`) payload, or a signature that
//! only non-strict Ed25519 verification would accept.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Why a JWS could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("a compact JWS has three dot-separated parts, this has {0}")]
    Parts(usize),
    #[error("the {0} is not base64url without padding")]
    Base64(&'static str),
    #[error("the protected header is not a JSON object: {0}")]
    Header(String),
    #[error("alg must be \"EdDSA\", not {0:?}")]
    Alg(String),
    #[error("the header parameter {0:?} is not supported")]
    Unsupported(String),
    #[error("x5c must hold at least the signer's certificate")]
    NoCertificate,
    #[error("x5c entry {0} is not standard base64")]
    X5c(usize),
    #[error("an Ed25519 signature is 64 bytes, this is {0}")]
    SignatureLength(usize),
    #[error("the payload is not JSON: {0}")]
    Payload(String),
    #[error("the header parameter {0:?} does not name the x5c signer certificate")]
    Mismatch(&'static str),
}

/// `x5t#S256` (RFC 7515 §4.1.8) and `kid`, when present, must name the
/// x5c leaf: a signature must not point at one key and carry another. A
/// `kid` may be the leaf's SHA-256 fingerprint (hex), its `x5t#S256`, or the
/// RFC 7638 thumbprint of its Ed25519 key.
fn check_key_hints(header: &Header, leaf: &[u8]) -> Result<(), JwsError> {
    use sha2::{Digest, Sha256};
    let x5t = URL_SAFE_NO_PAD.encode(Sha256::digest(leaf));
    if let Some(t) = header.other.get("x5t#S256") {
        if t.as_str() != Some(x5t.as_str()) {
            return Err(JwsError::Mismatch("x5t#S256"));
        }
    }
    if let Some(kid) = header.other.get("kid") {
        let kid = kid.as_str().ok_or(JwsError::Mismatch("kid"))?;
        let fingerprint = hex::encode(Sha256::digest(leaf));
        let jwk_thumbprint = super::pki::parse_certificate(leaf).ok().map(|c| {
            let jwk = format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(c.public_key)
            );
            URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
        });
        if kid != fingerprint && kid != x5t && Some(kid) != jwk_thumbprint.as_deref() {
            return Err(JwsError::Mismatch("kid"));
        }
    }
    Ok(())
}

/// The protected header of our signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    /// The signer's claimed signing time (seconds since the epoch); the
    /// server judges signatures at the time it accepted them, not this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Certificate chain, signer first, standard base64 of DER.
    #[serde(default)]
    pub x5c: Vec<String>,
    /// Any other parameter, kept so it can be refused by name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A parsed compact JWS. Nothing about it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jws {
    pub header: Header,
    /// The certificates of `x5c`, decoded (signer first).
    pub chain: Vec<Vec<u8>>,
    pub payload: Vec<u8>,
    pub signature: [u8; 64],
    /// `b64url(header) . b64url(payload)`: the bytes the signature covers.
    pub signing_input: Vec<u8>,
}

/// RFC 8785 canonical JSON of a value.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json_canonicalizer::to_vec(value)
}

/// Whether `bytes` are exactly the canonical form of the JSON they hold.
pub fn is_canonical_json(bytes: &[u8]) -> Result<bool, JwsError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| JwsError::Payload(e.to_string()))?;
    let again = canonical_json(&value).map_err(|e| JwsError::Payload(e.to_string()))?;
    Ok(again == bytes)
}

/// The signing input `b64url(header) . b64url(payload)` of a JWS whose
/// header carries the chain `x5c` (DER, signer first) and the claimed time.
pub fn signing_input(payload: &[u8], x5c: &[Vec<u8>], iat: i64) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        iat: Some(iat),
        x5c: x5c.iter().map(|der| STANDARD.encode(der)).collect(),
        other: Default::default(),
    };
    // A header of strings and one integer always serialises.
    let header = canonical_json(&header).expect("header serialises");
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    out
}

/// Appends the signature over `signing_input` to make the compact JWS.
pub fn finish(signing_input: String, signature: &[u8; 64]) -> String {
    let mut out = signing_input;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    out
}

/// Signs `payload` (already canonical JSON) as a compact JWS whose header
/// carries the chain `x5c` (DER, signer first) and the claimed time `iat`.
pub fn sign_compact(payload: &[u8], key: &SigningKey, x5c: &[Vec<u8>], iat: i64) -> String {
    let input = signing_input(payload, x5c, iat);
    let sig = key.sign(input.as_bytes());
    finish(input, &sig.to_bytes())
}

/// Parses a compact JWS of our profile. Refuses anything it would not verify.
pub fn parse_compact(jws: &str) -> Result<Jws, JwsError> {
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(JwsError::Parts(parts.len()));
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| JwsError::Base64("header"))?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|e| JwsError::Header(e.to_string()))?;
    if header.alg != "EdDSA" {
        return Err(JwsError::Alg(header.alg));
    }
    if let Some(name) = header
        .other
        .keys()
        .find(|k| matches!(k.as_str(), "crit" | "b64" | "jku" | "jwk" | "x5u"))
    {
        return Err(JwsError::Unsupported(name.clone()));
    }
    if header.x5c.is_empty() {
        return Err(JwsError::NoCertificate);
    }
    let chain = header
        .x5c
        .iter()
        .enumerate()
        .map(|(i, c)| STANDARD.decode(c).map_err(|_| JwsError::X5c(i)))
        .collect::<Result<Vec<_>, _>>()?;
    check_key_hints(&header, &chain[0])?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| JwsError::Base64("payload"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Base64("signature"))?;
    let signature: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| JwsError::SignatureLength(sig.len()))?;
    Ok(Jws {
        header,
        chain,
        payload,
        signature,
        signing_input: format!("{h}.{p}").into_bytes(),
    })
}

/// Strict Ed25519 verification (RFC 8032 §5.1.7 with canonical S and R and
/// no small-order keys): the acceptance set ring and libsodium share.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    vk.verify_strict(message, &Signature::from_bytes(&sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn round_trip_and_strict_verification() {
        let k = key(7);
        let payload = canonical_json(&json!({"doc": "d1", "version": 3})).unwrap();
        let jws = sign_compact(&payload, &k, &[vec![1, 2, 3]], 1_764_000_000);
        let parsed = parse_compact(&jws).unwrap();
        assert_eq!(parsed.payload, payload);
        assert_eq!(parsed.chain, vec![vec![1, 2, 3]]);
        assert_eq!(parsed.header.iat, Some(1_764_000_000));
        let pk = k.verifying_key().to_bytes();
        assert!(verify_ed25519(
            &pk,
            &parsed.signing_input,
            &parsed.signature
        ));
        let mut other = parsed.signing_input.clone();
        other.push(b' ');
        assert!(!verify_ed25519(&pk, &other, &parsed.signature));
        assert!(!verify_ed25519(
            &key(8).verifying_key().to_bytes(),
            &parsed.signing_input,
            &parsed.signature
        ));
    }

    /// RFC 8032 §7.1 test vectors 1–3 (secret key, public key, message, signature).
    #[test]
    fn rfc8032_vectors() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (sk, pk, msg, sig) in vectors {
            let sk: [u8; 32] = hex::decode(sk).unwrap().try_into().unwrap();
            let k = SigningKey::from_bytes(&sk);
            let (pk, msg, sig) = (
                hex::decode(pk).unwrap(),
                hex::decode(msg).unwrap(),
                hex::decode(sig).unwrap(),
            );
            assert_eq!(k.verifying_key().to_bytes().to_vec(), pk);
            assert_eq!(
                k.sign(&msg).to_bytes().to_vec(),
                sig,
                "signing is deterministic"
            );
            assert!(verify_ed25519(&pk, &msg, &sig));
        }
    }

    #[test]
    fn malformed_input_is_a_clear_error_not_a_panic() {
        let good = sign_compact(b"{}", &key(1), &[vec![9]], 0);
        let [h, p, s] = good.split('.').collect::<Vec<_>>()[..] else {
            unreachable!()
        };
        let b = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let cases: Vec<(String, JwsError)> = vec![
            (String::new(), JwsError::Parts(1)),
            ("a.b".into(), JwsError::Parts(2)),
            (format!("{h}.{p}.{s}.x"), JwsError::Parts(4)),
            (format!("!!.{p}.{s}"), JwsError::Base64("header")),
            (
                format!("{}.{p}.{s}", b("[1]")),
                JwsError::Header(String::new()),
            ),
            (
                format!("{}.{p}.{s}", b(r#"{"alg":"HS256","x5c":["AA=="]}"#)),
                JwsError::Alg("HS256".into()),
            ),
            (
                format!("{}.{p}.{s}", b(r#"{"alg":"none","x5c":["AA=="]}"#)),
                JwsError::Alg("none".into()),
            ),
            (
                format!(
                    "{}.{p}.{s}",
                    b(r#"{"alg":"EdDSA","x5c":["AA=="],"crit":["b64"],"b64":false}"#)
                ),
                JwsError::Unsupported("b64".into()),
            ),
            (
                format!("{}.{p}.{s}", b(r#"{"alg":"EdDSA"}"#)),
                JwsError::NoCertificate,
            ),
            (
                format!("{}.{p}.{s}", b(r#"{"alg":"EdDSA","x5c":["not base64!"]}"#)),
                JwsError::X5c(0),
            ),
            (format!("{h}.%%%.{s}"), JwsError::Base64("payload")),
            (
                format!("{h}.{p}.{}", &s[..40]),
                JwsError::SignatureLength(30),
            ),
            (format!("{h}.{p}."), JwsError::SignatureLength(0)),
        ];
        for (input, want) in cases {
            let got = parse_compact(&input).unwrap_err();
            match (&got, &want) {
                (JwsError::Header(_), JwsError::Header(_)) => {}
                _ => assert_eq!(got, want, "{input}"),
            }
        }
    }

    #[test]
    fn canonical_check() {
        assert!(is_canonical_json(br#"{"a":1,"b":[true,null]}"#).unwrap());
        assert!(!is_canonical_json(br#"{"b":1,"a":2}"#).unwrap());
        assert!(!is_canonical_json(br#"{"a": 1}"#).unwrap());
        assert!(!is_canonical_json(br#"{"a":1.0}"#).unwrap());
        assert!(is_canonical_json(b"nope").is_err());
    }
}
