//! The running heart of Drehscheibe.
//!
//! ```text
//!  InputAdapter ──submit──► Hub (Intake) ──accept──► Store ──Route job──► dispatcher
//!                                                                          │
//!                     RoutingPolicy (rule depot + tenant config) ◄─────────┘
//!                                   │ RoutePlan: tenant, Leistung, rule version, outputs
//!                                   ▼
//!                     Store (deliveries + Deliver jobs) ──► dispatcher ──► Connector
//!                                                           (per-endpoint limits,
//!                                                            retries, dead letters)
//! ```
//!
//! [`Hub`] implements [`drehscheibe_model::Intake`] for input adapters and
//! runs the workers ([`Hub::run`]). All state lives in the [`Store`]; the
//! hub itself holds only in-flight work, so a crash loses nothing that was
//! acknowledged: leases are released at start and the jobs run again
//! (at-least-once delivery).
//!
//! Routing is bounded per message and per hub: intake checks run on the
//! blocking pool, routing on `route_workers` threads of its own
//! (`route_pool`); each routing step has a time budget
//! ([`HubSettings::route_budget`]; XPath and XSLT check the deadline
//! cooperatively, and an over-budget message ends `dead` with the reason
//! long before its job lease could expire), and documents in flight share
//! a memory budget ([`HubSettings::document_memory`]: routing reserves the
//! payload's estimated tree size and waits while the budget is taken).
//!
//! Connector health checks run beside the workers ([`health`]), and so
//! does the retention sweeper ([`retention`]) when
//! [`HubSettings::retention`] is set.
//!
//! [`Store`]: drehscheibe_store::Store

pub mod admin;
mod connectors;
mod container;
mod depot_router;
pub mod dry_run;
pub mod health;
mod hub;
pub mod insight;
mod metrics;
pub mod retention;
mod route_pool;
mod routing;
mod scanning;
mod worker;

pub use connectors::{ConnectorRegistry, ConnectorSlot};
pub use depot_router::DepotRouter;
pub use hub::{EngineError, Hub, HubSettings, ReplayError};
pub use metrics::{DeliveryTally, Metrics};
pub use retention::{RetentionSettings, SweepReport};
pub use routing::{PlannedOutput, RouteFailure, RoutePlan, RoutingPolicy};
pub use scanning::{ReleaseError, Scanning};
