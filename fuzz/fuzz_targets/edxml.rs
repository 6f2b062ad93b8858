//! Fuzz target: reading edXML packages and status messages (the interchange
//! axis's inbound bodies) from arbitrary bytes. Any panic is a bug: bad
//! input must come back as an error naming a field.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/domain/interchange.rs"]
mod interchange;

/// Where the reader looks for the interchange's vocabulary.
mod domain {
    pub(crate) use super::interchange;
}

#[allow(dead_code)]
#[path = "../../src/interchange/edxml/mod.rs"]
mod edxml;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(edxml::Inbound::Document(p)) = edxml::read(text) {
            // What was read writes out and reads back.
            let again = edxml::read(&p.to_xml());
            assert!(again.is_ok(), "{again:?}");
        }
    }
});
