//! [`Redirect`]: the error replies with which a cluster node refuses a command it did not
//! run, and says where (or when) to send it instead.

use std::sync::Arc;

use crate::BackendError;

use super::slot_map::Addr;

/// A refusal that means "the command did not run here; send it again".
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Redirect {
    /// `MOVED <slot> <host:port>`: the slot now lives on that node, for good.
    Moved(u16, Addr),
    /// `ASK <slot> <host:port>`: the slot is migrating and the key is already on that
    /// node; send this one command there, after `ASKING`.
    Ask(Addr),
    /// `TRYAGAIN`: a multi-key command during a slot migration whose keys are split
    /// between the two nodes; send it again in a moment.
    TryAgain,
}

impl Redirect {
    /// The redirect an error reply asks for, or `None` for any other error.
    pub(crate) fn of(error: &BackendError) -> Option<Redirect> {
        let code = error.code()?;
        match code {
            "TRYAGAIN" => return Some(Redirect::TryAgain),
            "MOVED" | "ASK" => {}
            _ => return None,
        }
        // The code may follow a prefix (a transaction's `EXECABORT … MOVED …`).
        let message = error.message();
        let at = message.find(code)?;
        let mut parts = message[at + code.len()..].split_whitespace();
        let slot = parts.next()?.parse::<u16>().ok()?;
        let addr = parts.next()?;
        let (host, port) = addr.rsplit_once(':')?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return None;
        }
        let addr: Addr = Arc::from(addr);
        Some(if code == "MOVED" {
            Redirect::Moved(slot, addr)
        } else {
            Redirect::Ask(addr)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_read_from_error_replies() {
        let of = |reply: &str| Redirect::of(&BackendError::from_reply(reply));
        assert_eq!(
            of("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved(3999, Arc::from("127.0.0.1:6381")))
        );
        assert_eq!(
            of("ASK 12182 10.0.0.2:7000"),
            Some(Redirect::Ask(Arc::from("10.0.0.2:7000")))
        );
        assert_eq!(
            of("TRYAGAIN Multiple keys request during rehashing of slot"),
            Some(Redirect::TryAgain)
        );
        assert_eq!(of("ERR nope"), None);
        assert_eq!(of("CLUSTERDOWN The cluster is down"), None);
        assert_eq!(of("MOVED x y"), None);
        assert_eq!(of("MOVED 1 nohost"), None);
        assert_eq!(of("MOVED 1 :7000"), None);
    }

    #[test]
    fn a_redirect_inside_a_transaction_error_is_found() {
        let error = BackendError::from_reply("MOVED 866 127.0.0.1:7001").with_code("MOVED");
        let wrapped = BackendError::new(
            error.kind(),
            format!("EXECABORT Transaction discarded: {}", error.message()),
        )
        .with_code("MOVED");
        assert_eq!(
            Redirect::of(&wrapped),
            Some(Redirect::Moved(866, Arc::from("127.0.0.1:7001")))
        );
    }
}
