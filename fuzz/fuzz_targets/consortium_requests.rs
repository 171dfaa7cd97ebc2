//! Consortium member requests and log entries as other institutions send them: any bytes
//! either decode into a request that encodes back to the same bytes, or are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_consortium::{Entry, Note, SignedRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = SignedRequest::from_bytes(data) {
        assert_eq!(request.to_bytes(), data, "a request has one encoding");
        let _ = request.verify("tally", &[7; 32]);
    }
    let _ = Entry::decode(data);
    let _ = Note::parse_bytes(data);
});
