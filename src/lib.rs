//! Rampart: an edge reverse proxy on Pingora. Folders follow a request's path: `config`
//! (file → validated model), `proxy` (the request phases), `rules`, `upstream` (pools and
//! health), `admin` (status endpoints), `server` (assembling the Pingora server).

pub mod admin;
pub mod alloc;
pub mod certificates;
pub mod config;
pub mod explain;
pub mod log_throttle;
pub mod logger;
pub mod metrics;
pub mod proxy;
pub mod rules;
pub mod server;
pub mod upstream;
