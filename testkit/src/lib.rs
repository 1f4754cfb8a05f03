//! Fault-injection harness for the relay cluster (issue 6): a TCP proxy per link
//! ([`proxy`]), real `concord-server` processes ([`node`]) assembled into a cluster with a
//! proxy on every node→node and client→node link ([`cluster`]), concurrent writing devices
//! ([`writers`]), session-guarantee probes ([`reads`]), the nemeses and their seeded scheduler ([`nemesis`]), and the checker run
//! after healing ([`checker`]) over each node's database digest ([`digest`], the type `concord-server digest` prints, from core); [`run`] ends
//! a run (heal, converge, check); [`ports`] hands out free ports to every harness.

pub mod checker;
pub mod cluster;
pub use concord_core::log::digest;
pub mod error;
pub mod http;
pub mod nemesis;
pub mod node;
pub mod ports;
pub mod proxy;
pub mod reads;
pub mod run;
pub mod writers;

pub use checker::{check, Report};
pub use cluster::{Cluster, ClusterSpec, ClusterStatus, Sample};
pub use error::{Result, TestkitError};
pub use nemesis::{inject, Fault, Nemesis, Scheduler, Timing};
pub use proxy::{LinkMode, Proxy};
pub use reads::{ReadObservation, ReadOutcome, Reader};
pub use run::settle;
pub use writers::{DeviceRecord, WriterSpec, Writers};
