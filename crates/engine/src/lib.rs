//! mailzone-engine: the use cases that combine the pure planner with files, the state
//! database and (later) DNS providers. The CLI and the server are thin layers over it.

pub mod clock;
pub mod error;
pub mod load;
pub mod records;

pub use error::EngineError;
pub use load::{LoadedConfig, load_config};
pub use records::{DomainRecords, RecordsRequest, records};
