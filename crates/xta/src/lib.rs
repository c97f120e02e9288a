//! XTA 2 (Version 3 line, namespace `http://xoev.de/transport/xta/211`)
//! for Drehscheibe.
//!
//! * the XTA-WS server: SOAP 1.2 with WS-Addressing and MTOM/XOP, the
//!   twelve operations of the official WSDL, hub-hosted mailboxes;
//! * the client side: a SOAP client with mTLS, the `xta` connector
//!   (send to a remote XTA server), the `xta-mailbox` connector (put into
//!   a hub-hosted mailbox) and the `xta-poller` input adapter (fetch from
//!   a remote mailbox); the connectors' configuration plugins are in
//!   [`connector_config`].

// xta-server
pub mod channel_config;
pub mod faults;
pub mod mailbox;
pub mod model;
pub mod mtom;
pub mod server;
pub mod soap;

pub mod client;
pub mod connector;
pub mod connector_config;
pub mod mailbox_connector;
pub mod poller;
