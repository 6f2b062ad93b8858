//! Interchange with other agencies' systems over the national document
//! axis (Decision 28/2018/QĐ-TTg): edXML packages per QCVN 102:2016.
//!
//! Must never: send a confidential document, or accept a package it cannot
//! read whole.

pub mod edxml;
