//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! files at compile time, and cargo would otherwise not notice a new file.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations_postgres");
}
