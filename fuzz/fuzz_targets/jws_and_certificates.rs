//! Fuzz target: compact JWS parsing, canonical-JSON checks, certificate and
//! CRL parsing, chain validation and revocation on arbitrary bytes. Any
//! panic is a bug: bad input must come back as an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/crypto/jws.rs"]
mod jws;
#[allow(dead_code)]
#[path = "../../src/crypto/pki.rs"]
mod pki;

fuzz_target!(|data: &[u8]| {
    let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = jws::parse_compact(text) {
            let _ = jws::is_canonical_json(&parsed.payload);
            for cert in &parsed.chain {
                let _ = pki::parse_certificate(cert);
            }
            let _ = pki::verify_chain(&parsed.chain, &parsed.chain, at);
            if let Some(ee) = parsed.chain.first() {
                let _ = pki::revocation(ee, ee, &pki::parse_crls(parsed.chain.clone()), at);
            }
            let _ = jws::verify_ed25519(
                &parsed.signature[..32],
                &parsed.signing_input,
                &parsed.signature,
            );
        }
        let _ = pki::pem_blocks(text, "CERTIFICATE");
    }
    let _ = pki::parse_certificate(data);
    let _ = pki::verify_chain(&[data.to_vec()], &[data.to_vec()], at);
    let _ = pki::revocation(data, data, &pki::parse_crls(vec![data.to_vec()]), at);
});
