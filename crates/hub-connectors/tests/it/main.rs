//! Tests of the connectors crate through its public interface.

mod catalog;
mod config;
mod render;
mod send;
mod sync;

use hub_connectors::ProviderManifest;

/// The shipped manifest with this code.
pub fn provider(code: &str) -> ProviderManifest {
    hub_connectors::catalog()
        .expect("catalog loads")
        .into_iter()
        .find(|m| m.code == code)
        .unwrap_or_else(|| panic!("{code} is in the catalog"))
}
