//! Customers' sealed personal data: what binds a sealed value to its field and customer.

/// Associated data of a sealed field: its name and its customer, so that a value sealed for
/// one customer's field does not open as another's.
pub fn sealed_field(field: &str, id: &str) -> String {
    format!("customer.{field}:{id}")
}
