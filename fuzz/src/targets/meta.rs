//! meta.json as the two readers see it: the tsdb crate's (a block on disk, kept fields
//! written back) and objstore's (a block in the bucket, read leniently).

/// meta.json bytes. What parses must serialise and parse back to the same typed fields.
pub fn meta_json(data: &[u8]) {
    if let Ok(m) = skein_tsdb::block::BlockMeta::from_json(data) {
        let json = m.to_json().expect("a parsed meta serialises");
        let back = skein_tsdb::block::BlockMeta::from_json(&json).expect("written meta parses");
        assert_eq!(
            (m.ulid, m.min_time, m.max_time, m.version),
            (back.ulid, back.min_time, back.max_time, back.version)
        );
        assert_eq!(m.stats.num_series, back.stats.num_series);
        assert_eq!(m.compaction.sources, back.compaction.sources);
        assert_eq!(
            m.thanos.as_ref().map(|t| &t.labels),
            back.thanos.as_ref().map(|t| &t.labels)
        );
    }
    if let Ok(m) = skein_objstore::BlockMeta::parse(data) {
        let _ = m.external_labels();
        let _ = m.resolution();
        let json = serde_json::to_vec(&m).expect("a parsed meta serialises");
        let back = skein_objstore::BlockMeta::parse(&json).expect("written meta parses");
        assert_eq!(m, back);
    }
    let _ = serde_json::from_slice::<skein_objstore::DeletionMark>(data);
}
