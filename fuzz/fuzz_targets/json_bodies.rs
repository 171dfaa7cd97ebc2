//! JSON request bodies of the API: any bytes either become a typed request and then a
//! ledger command or a risk event, or are refused; none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_server::wire::{
    CreateAccountRequest, CreateHoldRequest, PostEntryRequest, PostHoldRequest,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<PostEntryRequest>(data) {
        let _ = request.into_new_entry();
    }
    if let Ok(request) = serde_json::from_slice::<CreateAccountRequest>(data) {
        let _ = request.into_new_account();
    }
    if let Ok(request) = serde_json::from_slice::<CreateHoldRequest>(data) {
        let _ = request.into_new_hold();
    }
    if let Ok(request) = serde_json::from_slice::<PostHoldRequest>(data) {
        let _ = request.amount();
    }
    let _ = serde_json::from_slice::<tally_ledger::Command>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tally_risk::Event::from_json(text);
    }
});
