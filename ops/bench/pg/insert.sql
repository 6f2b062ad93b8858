-- One durable event insert per transaction (synchronous_commit on): a new
-- stream's first event with a draft's payload, about the size vanthu stores.
\set s random(1, 9000000000000000000)
INSERT INTO events (stream, version, event_type, payload, metadata)
VALUES ('doc-' || :s, 1, 'document.drafted.v1',
  '{"type":"drafted","agency":"SVHTT","drafting_unit":"QLVH","author":"svhtt-cv-qlvh","doc_type":"CV","title":"Công văn về việc đo tải hệ thống","content":[{"name":"cong-van.txt","sha256":"9f2c3a1d5e7b4c6a8f0e1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a49382"}],"urgency":"normal","confidentiality":"normal","recipients":[{"agency":"UBND","reply_within_working_days":5}]}',
  '{"actor":"svhtt-cv-qlvh","request_id":"0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f506"}');
