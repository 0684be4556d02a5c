//! An in-process connection without a socket, for tests and benchmarks of applications
//! built on the library (and of the library itself).

use bytes::Bytes;

use crate::client::ClientSession;
use crate::queue::Drained;
use crate::transport::{Protocol, Session, SessionFactory, TransportInfo};
use crate::{Disconnect, Node};

/// A connection to a [`Node`] that lives in the same process: frames go in through
/// [`LocalConnection::handle`], what the server would write comes out of
/// [`LocalConnection::drain`]. Timers do not run on their own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use gyre::{ConnectReply, Credentials, LocalConnection, Node};
/// let node = Node::builder().build();
/// node.on_connecting(|_| async { Ok(ConnectReply::new(Credentials::new("42"))) });
/// let conn = LocalConnection::open(&node, false).unwrap();
/// conn.handle(r#"{"id":1,"connect":{}}"#.into()).await.unwrap();
/// let mut out = Vec::new();
/// assert!(conn.drain(&mut out).is_none());
/// assert!(out[0].starts_with(br#"{"id":1,"connect":{"client":"#));
/// # }
/// ```
#[derive(Debug)]
pub struct LocalConnection {
    session: ClientSession,
}

impl LocalConnection {
    /// Opens a connection speaking JSON, or Protobuf when `protobuf` is true.
    pub fn open(node: &Node, protobuf: bool) -> Result<Self, Disconnect> {
        let info = TransportInfo {
            name: "local",
            protocol: if protobuf {
                Protocol::Protobuf
            } else {
                Protocol::Json
            },
            emulation: false,
            unidirectional: false,
            native_ping_pong: false,
        };
        let request = http::Request::new(()).into_parts().0;
        Ok(LocalConnection {
            session: node.new_session(info, &request)?,
        })
    }

    /// Handles one inbound frame (one or more commands). `Err` = the server closes the
    /// connection with this disconnect.
    pub async fn handle(&self, frame: Bytes) -> Result<(), Disconnect> {
        self.session.handle_message(frame).await
    }

    /// Moves every encoded message the server queued into `out` (one item per reply or
    /// push). Returns the disconnect when the server closed the connection.
    pub fn drain(&self, out: &mut Vec<Bytes>) -> Option<Disconnect> {
        loop {
            match self.session.outbound().drain(0, out) {
                Drained::Messages => continue,
                Drained::Empty => return None,
                Drained::Close(d) => return Some(d),
            }
        }
    }

    /// Ends the connection as a transport would.
    pub async fn close(self, disconnect: Disconnect) {
        self.session.finish(disconnect).await;
    }
}
