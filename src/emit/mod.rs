//! Writers of the combined outputs (Atom now; JSON Feed later). Pure: entries in, bytes out.

pub mod atom;

use crate::domain::ItemKey;

/// How an output describes itself; built by the caller from config.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub id: String,
    pub title: String,
    /// Absolute public URL of this output, for `link rel="self"`.
    pub self_url: String,
    /// Authority used in entry ids: `tag:{authority},2026:item:{key}`.
    pub id_authority: String,
}

/// The stable id of an entry, derived only from its item key and the operator's
/// authority, so it is the same across restarts, re-renders and re-cleaning.
pub fn entry_id(id_authority: &str, key: &ItemKey) -> String {
    format!("tag:{id_authority},2026:item:{}", key.to_hex())
}
