//! NATS CLI contexts (§10.2) are read by the library: see
//! [`nap_nats::connect`]. The CLI only needs the configuration directory.

pub use nap_nats::connect::config_dir;
