//! Cancelling work when the client goes away. actix-web keeps running a
//! handler after its HTTP/1 client disconnected; Prometheus (Go) cancels
//! the query instead. [`on_connect`] keeps a duplicate of the connection's
//! socket in the connection data; [`until_disconnect`] races a future
//! against the peer closing it, so a dropped client drops the query and,
//! with it, every StoreAPI call it made.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

/// How often a waiting request checks its client.
const POLL: Duration = Duration::from_millis(200);

/// A view of the client's socket, for noticing that it closed.
#[derive(Clone, Debug)]
pub struct PeerWatch(Arc<std::net::TcpStream>);

impl PeerWatch {
    /// Resolves once the client has closed the connection (EOF or error).
    /// Bytes the client sent meanwhile (pipelining) count as "still there".
    pub async fn closed(&self) {
        loop {
            tokio::time::sleep(POLL).await;
            let mut b = [0u8; 1];
            match self.0.peek(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// For `HttpServer::on_connect`: remembers plain TCP connections so
/// handlers can notice disconnects. Other connection types (TLS) are left
/// alone and their requests simply run to the end.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    #[cfg(unix)]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        let Ok(fd) = tcp.as_fd().try_clone_to_owned() else {
            return;
        };
        let sock = std::net::TcpStream::from(fd);
        if sock.set_nonblocking(true).is_ok() {
            ext.insert(PeerWatch(Arc::new(sock)));
        }
    }
}

/// Runs `fut` unless the client disconnects first (then `None`, and `fut`
/// is dropped).
pub async fn until_disconnect<T>(req: &HttpRequest, fut: impl Future<Output = T>) -> Option<T> {
    let Some(watch) = req.conn_data::<PeerWatch>().cloned() else {
        return Some(fut.await);
    };
    tokio::select! {
        out = fut => Some(out),
        () = watch.closed() => None,
    }
}
