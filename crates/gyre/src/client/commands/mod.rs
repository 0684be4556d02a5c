//! One file per command of the client protocol.

mod connect;
mod history;
mod map;
mod presence;
mod publish;
mod refresh;
mod rpc;
mod subscribe;

pub(crate) use map::MapFlow;
