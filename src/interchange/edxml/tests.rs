//! edXML packages: what vanthu writes reads back the same; both namespaces
//! of the field read; every bad or hostile input is refused naming the
//! field.

use chrono::{DateTime, NaiveDate, Utc};

use super::*;

fn organ(id: &str, name: &str) -> Organ {
    Organ {
        organ_id: id.into(),
        organ_name: name.into(),
        ..Organ::default()
    }
}

fn package() -> Package {
    Package {
        header: MessageHeader {
            from: organ("000.00.00.H40", "UBND tỉnh Nghệ An"),
            to: vec![organ("000.00.00.H41", "UBND tỉnh Hà Tĩnh")],
            code: Code {
                code_number: "05".into(),
                code_notation: "KH-UBND".into(),
            },
            promulgation_info: PromulgationInfo {
                place: "Nghệ An".into(),
                promulgation_date: "2031/03/05".into(),
            },
            document_type: DocumentType {
                kind: "2".into(),
                type_name: "Kế hoạch".into(),
            },
            subject: "Kế hoạch phối hợp <liên tỉnh> & \"chuyển đổi số\"".into(),
            signer_info: SignerInfo {
                competence: "TM.".into(),
                position: "Chủ tịch".into(),
                full_name: "Nguyễn Văn A".into(),
            },
            due_date: Some("2031/03/20".into()),
            to_places: ToPlaces {
                places: vec!["UBND tỉnh Hà Tĩnh".into(), "Lưu: VT".into()],
            },
            other_info: OtherInfo {
                priority: 1,
                page_amount: 2,
                ..OtherInfo::default()
            },
            steering_type: 0,
            document_id: "000.00.00.H40,2031/03/05,05/KH-UBND".into(),
            ..MessageHeader::default()
        },
        trace: TraceHeaderList {
            trace: vec![TraceHeader {
                organ_id: "000.00.00.H40".into(),
                timestamp: "2031/03/05 09:30:00".into(),
            }],
            bussiness: Some(Bussiness {
                bussiness_doc_type: 0,
                ..Bussiness::default()
            }),
        },
        attachments: vec![
            Attachment {
                content_id: "1".into(),
                name: "ke-hoach.pdf".into(),
                content_type: "application/pdf".into(),
                description: String::new(),
                bytes: b"%PDF-1.7 \x00\x01\xff".to_vec(),
            },
            Attachment {
                content_id: "2".into(),
                name: "vanthu-bundle.json".into(),
                content_type: "application/json".into(),
                description: "vanthu evidence bundle".into(),
                bytes: br#"{"signatures":[]}"#.to_vec(),
            },
        ],
    }
}

fn document(xml: &str) -> Package {
    match read(xml) {
        Ok(Inbound::Document(p)) => *p,
        other => panic!("{other:?}\n{xml}"),
    }
}

fn refused(xml: &str) -> EdxmlError {
    match read(xml) {
        Err(e) => e,
        Ok(p) => panic!("accepted: {p:?}\n{xml}"),
    }
}

#[test]
fn a_written_package_reads_back_the_same() {
    let p = package();
    let xml = p.to_xml();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(&format!("<edXML xmlns=\"{NS_QCVN}\">")),
        "{xml}"
    );
    assert!(xml.contains("<ContentTransferEncoded>"), "{xml}");
    assert_eq!(document(&xml), p);
}

#[test]
fn a_status_message_reads_back_the_same() {
    let s = MessageStatus {
        response_for: ResponseFor {
            organ_id: "000.00.00.H40".into(),
            code: "05/KH-UBND".into(),
            promulgation_date: "2031/03/05".into(),
            document_id: "000.00.00.H40,2031/03/05,05/KH-UBND".into(),
        },
        from: organ("000.00.00.H41", "UBND tỉnh Hà Tĩnh"),
        status_code: "03".into(),
        description: "Đã vào sổ đến số 12".into(),
        timestamp: "2031/03/05 10:00:00".into(),
        staff_info: Some(StaffInfo {
            department: "Văn phòng".into(),
            staff: "Văn thư".into(),
            ..StaffInfo::default()
        }),
    };
    let xml = s.to_xml();
    assert_eq!(read(&xml).unwrap(), Inbound::Status(Box::new(s)));
}

/// The government axis's namespace, prefixed, with the envelope as root
/// and the message header straight under it; attachments unqualified.
#[test]
fn the_axis_namespace_with_a_prefix_reads() {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<e:edXMLEnvelope xmlns:e="{NS_EDOC}">
  <e:MessageHeader>
    <e:From><e:OrganId>000.00.00.H41</e:OrganId><e:OrganName>UBND tỉnh Hà Tĩnh</e:OrganName></e:From>
    <e:To><e:OrganId>000.00.00.H40</e:OrganId></e:To>
    <e:Code><e:CodeNumber>12</e:CodeNumber><e:CodeNotation>BC-UBND</e:CodeNotation></e:Code>
    <e:PromulgationInfo><e:Place>Hà Tĩnh</e:Place><e:PromulgationDate>07/03/2031</e:PromulgationDate></e:PromulgationInfo>
    <e:DocumentType><e:Type>2</e:Type><e:TypeName>Báo cáo</e:TypeName></e:DocumentType>
    <e:Subject>Báo cáo kết quả &amp; kiến nghị &#x1EA1;</e:Subject>
    <e:DueDate>2031-03-20</e:DueDate>
    <e:ResponseFor><e:OrganId>000.00.00.H40</e:OrganId><e:Code>05/KH-UBND</e:Code><e:DocumentId>X-1</e:DocumentId></e:ResponseFor>
    <e:DocumentId>H41-2031-12</e:DocumentId>
  </e:MessageHeader>
  <e:Body><e:Manifest><e:Reference><e:ContentId>a</e:ContentId><e:ContentType>text/plain</e:ContentType><e:AttachmentName>bao-cao.txt</e:AttachmentName></e:Reference></e:Manifest></e:Body>
  <AttachmentEncoded><Attachment><ContentId>a</ContentId><ContentTransferEncoded>
    QsOhbyBjw6FvCg==
  </ContentTransferEncoded></Attachment></AttachmentEncoded>
</e:edXMLEnvelope>"#
    );
    let p = document(&xml);
    assert_eq!(p.header.from.organ_id, "000.00.00.H41");
    assert_eq!(p.header.subject, "Báo cáo kết quả & kiến nghị ạ");
    assert_eq!(
        read_date(&p.header.promulgation_info.promulgation_date).unwrap(),
        NaiveDate::from_ymd_opt(2031, 3, 7).unwrap()
    );
    assert_eq!(p.header.response_for[0].document_id, "X-1");
    assert_eq!(p.attachments.len(), 1);
    assert_eq!(p.attachments[0].bytes, "Báo cáo\n".as_bytes());
}

#[test]
fn dates_and_instants_in_every_form_the_field_uses() {
    let d = NaiveDate::from_ymd_opt(2031, 3, 5).unwrap();
    for text in [
        "2031/03/05",
        "2031-03-05",
        "05/03/2031",
        "05-03-2031",
        " 2031/3/5 ",
        "2031-03-05T08:00:00+07:00",
    ] {
        assert_eq!(read_date(text), Ok(d), "{text}");
    }
    for text in [
        "",
        "2031/13/01",
        "31/02/2031",
        "hôm nay",
        "2031",
        "1800/01/01",
        "-262143/01/01 00:00:00",
        "+262142/12/31",
    ] {
        assert!(read_date(text).is_err(), "{text}");
    }
    let t = DateTime::parse_from_rfc3339("2031-03-05T02:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    for text in [
        "2031/03/05 09:30:00",
        "2031-03-05 09:30:00",
        "2031-03-05T09:30:00",
        "05/03/2031 09:30:00",
        "2031-03-05T09:30:00+07:00",
        "2031-03-05T02:30:00Z",
    ] {
        assert_eq!(read_instant(text), Ok(t), "{text}");
    }
    assert_eq!(write_timestamp(t), "2031/03/05 09:30:00");
    assert_eq!(write_date(d), "2031/03/05");
    for text in [
        "2031/03/05 25:00:00",
        "-262143/01/01 00:00:00",
        "262142/12/31 23:59:59",
        "1899/12/31 23:59:59",
    ] {
        assert!(read_instant(text).is_err(), "{text}");
    }
}

#[test]
fn hostile_and_malformed_xml_is_refused_naming_what() {
    let good = package().to_xml();
    let body = good.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>{}"#,
        body.replace("<Subject>", "<Subject>&lol2;")
    );
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>{}"#,
        body.replace("<Subject>", "<Subject>&xxe;")
    );
    let deep = format!(
        "<edXML xmlns=\"{NS_QCVN}\">{}{}</edXML>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    let many = format!(
        "<edXML xmlns=\"{NS_QCVN}\">{}</edXML>",
        "<a/>".repeat(30_000)
    );
    // (what, document, the field the refusal names)
    let cases: Vec<(&str, String, &str)> = vec![
        ("billion laughs", laughs, "xml"),
        ("external entity", xxe, "xml"),
        (
            "an entity nobody declared",
            good.replace("<Subject>", "<Subject>&lol;"),
            "xml",
        ),
        (
            "wrong namespace",
            good.replace(NS_QCVN, "http://example.org/not-edxml"),
            "edXML",
        ),
        (
            "no namespace",
            good.replace(&format!(" xmlns=\"{NS_QCVN}\""), ""),
            "edXML",
        ),
        (
            "an undeclared prefix",
            good.replace("<edXMLEnvelope>", "<x:edXMLEnvelope>")
                .replace("</edXMLEnvelope>", "</x:edXMLEnvelope>"),
            "edXMLEnvelope",
        ),
        ("not XML", "{\"json\": true}".into(), "xml"),
        ("unclosed", good.replace("</edXML>", ""), "xml"),
        (
            "mismatched tags",
            good.replace("</Subject>", "</Subjekt>"),
            "xml",
        ),
        (
            "two roots",
            format!("{good}<edXML xmlns=\"{NS_QCVN}\"/>"),
            "xml",
        ),
        ("too deep", deep, "xml"),
        ("too many elements", many, "xml"),
        (
            "other root",
            format!("<Envelope xmlns=\"{NS_QCVN}\"/>"),
            "Envelope",
        ),
        (
            "no header",
            format!(
                "<edXML xmlns=\"{NS_QCVN}\"><edXMLEnvelope><edXMLHeader/></edXMLEnvelope></edXML>"
            ),
            "MessageHeader",
        ),
        (
            "a bad sender id",
            good.replace(
                "<OrganId>000.00.00.H40</OrganId>",
                "<OrganId>h40 nghe an</OrganId>",
            ),
            "From/OrganId",
        ),
        (
            "no recipient",
            good.replace(
                &good[good.find("<To>").unwrap()..good.find("</To>").unwrap() + 5],
                "",
            ),
            "To",
        ),
        (
            "a bad recipient id",
            good.replace(
                "<OrganId>000.00.00.H41</OrganId>",
                "<OrganId>000..H41</OrganId>",
            ),
            "To[0]/OrganId",
        ),
        (
            "no number",
            good.replace("<CodeNumber>05</CodeNumber>", "<CodeNumber></CodeNumber>"),
            "Code/CodeNumber",
        ),
        (
            "a bad date",
            good.replace(
                "2031/03/05</PromulgationDate>",
                "2031/02/30</PromulgationDate>",
            ),
            "PromulgationInfo/PromulgationDate",
        ),
        (
            "no subject",
            good.replace(
                &good[good.find("<Subject>").unwrap()..good.find("</Subject>").unwrap() + 10],
                "<Subject> </Subject>",
            ),
            "Subject",
        ),
        (
            "a bad due date",
            good.replace("<DueDate>2031/03/20</DueDate>", "<DueDate>sớm</DueDate>"),
            "DueDate",
        ),
        (
            "priority 9",
            good.replace("<Priority>1</Priority>", "<Priority>9</Priority>"),
            "OtherInfo/Priority",
        ),
        (
            "priority not a number",
            good.replace("<Priority>1</Priority>", "<Priority>cao</Priority>"),
            "MessageHeader",
        ),
        (
            "no document id",
            good.replace(
                "<DocumentId>000.00.00.H40,2031/03/05,05/KH-UBND</DocumentId>",
                "",
            ),
            "MessageHeader",
        ),
        (
            "an attachment that is not base64",
            good.replace("<ContentTransferEncoded>", "<ContentTransferEncoded>!!"),
            "Attachment[1]/ContentTransferEncoded",
        ),
        (
            "a reference without its bytes",
            good.replace(
                "<ContentId>2</ContentId><ContentTransferEncoded>",
                "<ContentId>9</ContentId><ContentTransferEncoded>",
            ),
            "Manifest/Reference[1]/ContentId",
        ),
        (
            "one attachment referenced twice",
            good.replace(
                "<ContentId>2</ContentId><ContentType>",
                "<ContentId>1</ContentId><ContentType>",
            ),
            "Manifest/Reference[1]/ContentId",
        ),
        (
            "a date far outside",
            good.replace(
                "2031/03/05</PromulgationDate>",
                "-262143/01/01 00:00:00</PromulgationDate>",
            ),
            "PromulgationInfo/PromulgationDate",
        ),
        (
            "a name too long",
            good.replace(
                "<OrganName>UBND tỉnh Nghệ An</OrganName>",
                &format!("<OrganName>{}</OrganName>", "x".repeat(501)),
            ),
            "From/OrganName",
        ),
        (
            "a file name that is a path",
            good.replace(
                "<AttachmentName>ke-hoach.pdf",
                "<AttachmentName>../../etc/ke-hoach.pdf",
            ),
            "Manifest/Reference[0]/AttachmentName",
        ),
    ];
    for (what, xml, field) in cases {
        let e = refused(&xml);
        assert_eq!(e.field, field, "{what}: {e}");
        assert!(!e.reason.is_empty(), "{what}");
    }
}

#[test]
fn status_messages_are_checked_too() {
    let ok = MessageStatus {
        response_for: ResponseFor {
            organ_id: "000.00.00.H40".into(),
            document_id: "D-1".into(),
            ..ResponseFor::default()
        },
        from: organ("000.00.00.H41", ""),
        status_code: "06".into(),
        timestamp: "2031/03/05 10:00:00".into(),
        ..MessageStatus::default()
    };
    assert!(read(&ok.to_xml()).is_ok());
    let with = |f: &dyn Fn(&mut MessageStatus)| {
        let mut s = ok.clone();
        f(&mut s);
        s.to_xml()
    };
    let cases: Vec<(String, &str)> = vec![
        (with(&|s| s.status_code = "07".into()), "StatusCode"),
        (with(&|s| s.status_code = "3".into()), "StatusCode"),
        (with(&|s| s.from.organ_id = "H41!".into()), "From/OrganId"),
        (
            with(&|s| s.response_for.organ_id = String::new()),
            "ResponseFor/OrganId",
        ),
        (
            with(&|s| s.response_for.document_id = " ".into()),
            "ResponseFor/DocumentId",
        ),
        (with(&|s| s.timestamp = "ngày mai".into()), "Timestamp"),
        (with(&|s| s.description = "x".repeat(1001)), "Description"),
    ];
    for (xml, field) in cases {
        assert_eq!(refused(&xml).field, field, "{xml}");
    }
}

/// Thousands of damaged packages (cut, bytes changed, pieces repeated):
/// none panics, and whatever is accepted writes out and reads back.
#[test]
fn damaged_packages_never_panic() {
    let good = package().to_xml().into_bytes();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len();
            match next() % 4 {
                0 => bytes.truncate(at.max(1)),
                1 => bytes[at] = b"<>&;/\"'=x0 \n\xff"[(next() % 13) as usize],
                2 => {
                    let end = (at + (next() as usize) % 64).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(at..at, piece);
                }
                _ => {
                    let end = (at + (next() as usize) % 16).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Ok(Inbound::Document(p)) = read(text) {
            accepted += 1;
            assert_eq!(document(&p.to_xml()), *p);
        }
    }
    assert!(accepted > 0, "some damage is harmless (inside text)");
}
