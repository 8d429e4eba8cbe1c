//! Tests of `error` (in their own file; `cargo test -p live_cov_core`).

use super::*;

#[test]
fn every_error_has_a_kind_and_a_message_that_names_the_fix() {
    let cases = [
        (Error::UnknownSlot(3), "unknown_slot", "instrument it again"),
        (Error::TableFull(8), "table_full", "restart the node"),
        (Error::Snapshot(SnapshotError::Empty), "empty", ""),
        (
            Error::InvalidJson("eof".into()),
            "invalid_json",
            "invalid JSON: eof",
        ),
        (
            Error::Unencodable("pid".into()),
            "unencodable",
            "cannot encode as JSON: pid",
        ),
    ];
    for (e, kind, text) in cases {
        assert_eq!(e.kind(), kind);
        assert!(e.to_string().contains(text), "{e}");
    }
}

#[test]
fn snapshot_errors_convert_keeping_their_kind() {
    let e: Error = SnapshotError::BadInput("x".into()).into();
    assert_eq!(e.kind(), "bad_input");
}
