//! mailzone-engine: the use cases that combine the pure planner with files, the state
//! database and DNS providers. The CLI and the server are thin layers over it.

pub mod acme;
pub mod api_change;
pub mod check;
pub mod clock;
pub mod connect;
pub mod crash;
pub mod dkim;
pub mod error;
pub mod files;
pub mod load;
pub mod progress;
pub mod propagation;
pub mod reconcile;
pub mod records;
pub mod tasks;
pub mod tlsa;

pub use api_change::{ApiChange, ApiObjectKind, apply_api_change};
pub use check::{CheckReport, CheckRequest, DomainFindings, check};
pub use error::{EngineError, FailureClass};
pub use load::{
    ApiObject, ApiObjects, LoadedConfig, load_config, load_config_and_store, load_config_from,
    load_config_with, load_config_with_state,
};
pub use progress::{Progress, Silent};
pub use reconcile::{AfterRead, ReconcileReport, ReconcileRequest, ZoneOutcome, reconcile};
pub use records::{DomainRecords, RecordsRequest, records};
