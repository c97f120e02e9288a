//! placeholder
pub const CHUNK_BYTES: usize = 1 << 20;
pub struct PgBlobStore;
