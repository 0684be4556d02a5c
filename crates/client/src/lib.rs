//! placeholder
#![warn(missing_docs)]
mod core;
mod error;
mod types;
pub use error::{ClientError, TokenError};
pub use types::*;
