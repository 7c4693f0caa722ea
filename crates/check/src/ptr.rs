//! (not written yet: the ptr checks)

use crate::codes::Code;
use crate::context::DomainContext;
use crate::finding::Finding;

pub const CODES: &[&Code] = &[];

pub async fn check(_ctx: &DomainContext<'_>) -> Vec<Finding> {
    Vec::new()
}
