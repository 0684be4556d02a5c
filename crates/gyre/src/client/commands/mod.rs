//! One file per command of the client protocol.

mod connect;
mod history;
mod map;
mod presence;
mod publish;
mod refresh;
mod rpc;
pub(crate) mod shared_poll;
mod subscribe;

pub(crate) use map::MapFlow;
pub(crate) use shared_poll::TYPE_TRACK;
