//! What a package's header is checked against when another system's
//! document arrives (D3): the facts its sealed evidence states (recipients
//! by interchange identifier, reply deadlines, the signer as the sealed
//! organisation history names them), and which of the header's claims
//! the seal does not bear out.
//!
//! Must never: believe a header field the seal contradicts, or do I/O.

/// What the sealed evidence says of an issued document that travels as a
/// package: its recipients, by interchange identifier, with their reply
/// deadlines (the issuing record's), and its signer as the sealed
/// organisation history names them (D3: the header beside it is not
/// believed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFacts {
    /// (organisation identifier, reply deadline) per sealed recipient
    /// that has an identifier in the sealed history.
    pub recipients: Vec<(String, Option<chrono::NaiveDate>)>,
    pub signer_name: String,
    pub signer_position: String,
    /// `TM.`, `KT.`, … or `Trực tiếp`.
    pub competence: String,
}

impl SealedFacts {
    /// From the seal, the organisation history it attests, and the
    /// recipients of the issuing record that holds the seal.
    pub fn of(
        seal: &crate::domain::signing::SealPayload,
        sealed_org: &[crate::domain::org::OrgEvent],
        recipients: &[crate::domain::document::IssuedRecipient],
    ) -> Self {
        let mut org = crate::domain::org::Org::default();
        for e in sealed_org {
            org.apply(e);
        }
        let signed = &seal.signed;
        let signer = org
            .appointments
            .iter()
            .find(|a| a.official == signed.signer && a.agency == signed.agency);
        Self {
            recipients: recipients
                .iter()
                .filter_map(|r| {
                    let organ = org.agencies.get(&r.agency)?.organ_id.clone()?;
                    Some((organ, r.reply_due))
                })
                .collect(),
            signer_name: signer.map_or_else(|| signed.signer.clone(), |a| a.name.clone()),
            signer_position: signer
                .and_then(|a| a.title.clone())
                .unwrap_or_else(|| signed.position.as_str().to_owned()),
            competence: match signed.authority.as_str() {
                "" => "Trực tiếp".to_owned(),
                form => form.to_owned(),
            },
        }
    }

    /// The sealed reply deadline of recipient `organ`, if it is one.
    pub fn reply_due(&self, organ: &str) -> Option<Option<chrono::NaiveDate>> {
        self.recipients
            .iter()
            .find(|(o, _)| o == organ)
            .map(|(_, due)| *due)
    }
}

/// What a package's header claims beside the signatures, for the
/// recipients here.
pub struct HeaderClaims<'a> {
    /// The identifiers of this system's agencies its `To` names.
    pub to: &'a [&'a str],
    pub due_date: Option<chrono::NaiveDate>,
    pub signer_name: &'a str,
    pub signer_position: &'a str,
    pub competence: &'a str,
}

/// Where `claims` disagree with `sealed`: (field, why), in header order.
/// An empty signer field claims nothing.
pub fn unsealed_claims(
    claims: &HeaderClaims<'_>,
    sealed: &SealedFacts,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let date =
        |d: Option<chrono::NaiveDate>| d.map_or_else(|| "none".to_owned(), |d| d.to_string());
    for organ in claims.to {
        match sealed.reply_due(organ) {
            None => out.push(("To", format!("{organ} is not among the sealed recipients"))),
            Some(due) if due != claims.due_date => out.push((
                "DueDate",
                format!(
                    "the sealed reply deadline for {organ} is {}, the package says {}",
                    date(due),
                    date(claims.due_date)
                ),
            )),
            Some(_) => {}
        }
    }
    for (field, claim, fact) in [
        (
            "SignerInfo/FullName",
            claims.signer_name,
            &sealed.signer_name,
        ),
        (
            "SignerInfo/Position",
            claims.signer_position,
            &sealed.signer_position,
        ),
        (
            "SignerInfo/Competence",
            claims.competence,
            &sealed.competence,
        ),
    ] {
        let claim = claim.trim();
        if !claim.is_empty() && claim != fact.trim() {
            out.push((
                field,
                format!("the sealed evidence says {fact:?}, the package {claim:?}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_believed_only_where_the_seal_agrees() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let sealed = SealedFacts {
            recipients: vec![
                ("000.00.00.H42".into(), Some(d("2026-12-20"))),
                ("000.01.00.H42".into(), None),
            ],
            signer_name: "Nguyễn Văn A".into(),
            signer_position: "Chủ tịch".into(),
            competence: "Trực tiếp".into(),
        };
        let claims = |to: &'static [&'static str],
                      due: Option<chrono::NaiveDate>,
                      name: &'static str| HeaderClaims {
            to,
            due_date: due,
            signer_name: name,
            signer_position: "Chủ tịch",
            competence: "",
        };
        let fields = |c: &HeaderClaims<'_>| -> Vec<&str> {
            unsealed_claims(c, &sealed)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        for (c, want) in [
            (
                claims(&["000.00.00.H42"], Some(d("2026-12-20")), "Nguyễn Văn A"),
                vec![],
            ),
            (
                claims(&["000.00.00.H42"], Some(d("2026-12-10")), "Nguyễn Văn A"),
                vec!["DueDate"],
            ),
            (claims(&["000.00.00.H42"], None, ""), vec!["DueDate"]),
            (claims(&["000.01.00.H42"], None, ""), vec![]),
            (
                claims(&["000.01.00.H42"], Some(d("2026-12-10")), ""),
                vec!["DueDate"],
            ),
            (claims(&["000.02.00.H42"], None, ""), vec!["To"]),
            (
                claims(&["000.00.00.H42"], Some(d("2026-12-20")), "Trần Thị B"),
                vec!["SignerInfo/FullName"],
            ),
        ] {
            assert_eq!(
                fields(&c),
                want,
                "{:?} {:?} {:?}",
                c.to,
                c.due_date,
                c.signer_name
            );
        }
    }
}
