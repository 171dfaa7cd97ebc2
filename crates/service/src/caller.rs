//! Who asks for a use case: the API key behind the request and its name, as the audit trails
//! (reads of personal data, activation requests) record them.

/// The API key that asks, by id, and the name it was given. Names are not unique: a rule that
/// tells two callers apart (four eyes, a claimed case) compares key ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
}
