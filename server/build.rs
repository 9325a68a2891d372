// `sqlx::migrate!` embeds ../migrations (SQLite) and ../migrations_pg (PostgreSQL) at compile
// time; rebuild when a migration is added to either.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../migrations_pg");
}
