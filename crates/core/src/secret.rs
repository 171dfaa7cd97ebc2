//! `Secret<T>`: a value (key, password, personal datum) that prints as `***`.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// Wraps a value so that `Debug` and `Display` never show it. It can be deserialized
/// (from configuration) but deliberately not serialized; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Call sites are easy to find and review.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Settings {
        #[allow(dead_code)]
        name: String,
        password: Secret<String>,
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let settings: Settings =
            serde_json::from_str(r#"{"name":"main","password":"hunter2"}"#).unwrap();
        let printed = format!("{settings:?} {}", settings.password);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("***"));
        assert_eq!(settings.password.expose(), "hunter2");
    }
}
