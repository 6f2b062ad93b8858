//! Which documents cite which content blobs: `b/{sha256}/{doc}` for every
//! file any draft of the document named (`drafted`, `revised`), and for
//! every file and evidence bundle of a package that arrived from another
//! system (`b/{sha256}/{arrival}`). Blob
//! collection keeps every blob a document cites, and a draft may cite a
//! blob that a document its author may read already cites.
//!
//! Must never: forget a citation (an earlier version's signatures cover
//! its files, so they stay part of the record).

use super::{Applied, Projection, ProjectionError, Tx};
use crate::domain::document::DocumentEvent;

pub struct Citations;

/// The projection's name (its table is `p.citations`).
pub const NAME: &str = "citations";

/// Row prefix of the documents citing `sha256`.
pub fn prefix(sha256: &str) -> String {
    format!("b/{sha256}/")
}

impl Projection for Citations {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, a: &Applied<'_>, tx: &mut Tx<'_>) -> Result<(), ProjectionError> {
        // A package from another system cites its files and its evidence.
        if a.record.event_type == crate::interchange::ARRIVED {
            let arrival: crate::interchange::Arrived = super::payload(a.record)?;
            for sha in arrival
                .files
                .iter()
                .map(|f| &f.sha256)
                .chain([&arrival.evidence])
            {
                tx.put(format!("{}{}", prefix(sha), arrival.id), Vec::new());
            }
            return Ok(());
        }
        let Some((doc, event)) = a.doc else {
            return Ok(());
        };
        let draft = match event {
            DocumentEvent::Drafted(e) => &e.draft,
            DocumentEvent::Revised(e) => &e.draft,
            _ => return Ok(()),
        };
        for c in &draft.content {
            tx.put(format!("{}{doc}", prefix(&c.sha256)), Vec::new());
        }
        Ok(())
    }
}
