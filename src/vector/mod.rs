//! Vectors and the HNSW index (format-spec/08-vectors.md, 09-hnsw.md):
//! collections, attaching vectors to files, and searching straight from
//! the map. Everything changes through the core's transactions.
//!
//! Layers: [`distance`] (SIMD kernels), [`store`] (node and upper records
//! of one collection), [`files`] (growing the hidden files), [`search`]
//! (the bounded, iterative graph walk), [`build`] (insert, delete,
//! neighbour repair), [`connect`] (no node left without an incoming
//! edge), [`refs`] (a file's references to its vectors),
//! [`paths`] (result paths and subtree filters), [`api`] and [`query`]
//! (the operations on [`crate::fs::Fs`]).

pub mod admin;
pub mod api;
pub mod build;
pub mod bulk;
pub mod cache;
pub mod catalog_io;
pub mod connect;
pub mod control;
pub mod direct;
pub mod distance;
pub mod files;
pub mod ioctl;
pub mod paths;
pub mod query;
pub mod rebuild;
pub mod reconnect;
pub mod refs;
pub mod reorder;
pub mod search;
pub mod slots;
pub mod span;
pub mod stats;
pub mod store;
pub mod vattr;
pub mod visited;

pub use api::{detach_all, CollectionParams};
pub use cache::Cache;
pub use query::{Hit, SearchRequest, SearchResponse};
pub use search::Budget;
