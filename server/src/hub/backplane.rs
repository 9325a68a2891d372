//! The hub's port to the other servers of a cluster. The hub publishes what it commits and
//! every ephemeral event through a [`Backplane`] when one is plugged in; the plug-in (the Redis
//! cluster) depends on the hub and hands what arrives from elsewhere back to it
//! ([`super::Hub::accept`], [`super::Hub::publish_ephemeral_here`]). The hub never names the
//! plug-in.

use super::event::LiveEvent;
use crate::store::StoredEvent;

/// Where committed and ephemeral events also go when this server is one of a cluster. Called
/// on the publishing path (under the commit order lock for `committed`), so it must not block:
/// queue and return.
pub trait Backplane: Send + Sync + 'static {
    /// Events this server just committed (one transaction's or one batch's), in id order.
    fn committed(&self, events: &[StoredEvent]);
    /// An ephemeral event (typing, presence) published here, already encoded for the wire.
    fn ephemeral(&self, ev: &LiveEvent);
}
