//! Plain HTTP for Drehscheibe, in both directions.
//!
//! * [`inbox`]: the HTTP intake adapter, an axum router serving
//!   `POST /api/v1/inbox/{channel}`;
//! * [`connector`]: the HTTP(S) delivery connector ([`HttpConnector`]),
//!   which `POST`s or `PUT`s a document (and its attachments) to a
//!   Fachverfahren endpoint;
//! * [`config`]: the connector's configuration and its plugin
//!   ([`config::CONNECTOR`]);
//! * [`problem`]: RFC 7807 problem responses ([`Problem`]) used by every
//!   HTTP interface of the hub.

pub mod config;
pub mod connector;
pub mod inbox;
pub mod problem;

pub use connector::{HttpAuth, HttpConnector, HttpConnectorError, HttpConnectorSettings};
pub use inbox::{channel_router, inbox_router, unclaimed_router, AcceptedBody};
pub use problem::Problem;
