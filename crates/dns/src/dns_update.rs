//! The HTTP DNS providers of the `dns-update` library.

pub mod catalog;
