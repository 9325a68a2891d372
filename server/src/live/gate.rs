//! Polling only what woke up. A connection's pump loop selects over several sources, and every
//! pass polls each of them again. Most passes are for an event; polling the others again means
//! taking shared locks (a `Notify`'s waiter list, the shutdown token's) and trying a socket read
//! that cannot succeed, once per delivery per connection. A [`Gate`] (for a future made once per
//! connection) and a [`StreamGate`] (for a stream polled in place, such as the WebSocket's reads)
//! stand in front of such a source: they hand it a waker of their own, and poll it again only
//! after that waker fired (or after it last returned something). Until then a poll costs an
//! uncontended atomic swap.

use futures_util::task::AtomicWaker;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The waker handed to the gated source: it marks the gate open and wakes the task.
struct Signal {
    open: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.open.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The part both gates share: whether the source may have progress, and its waker.
struct Latch {
    signal: Arc<Signal>,
    waker: Waker,
}

impl Latch {
    fn new() -> Latch {
        // Open at first: the source has never been polled, so nothing is registered yet.
        let signal = Arc::new(Signal {
            open: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Latch {
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        }
    }

    /// Registers the task and takes the "woken" mark: true if the source must be polled.
    fn take(&self, cx: &Context<'_>) -> bool {
        // Register before looking, so a wake between the two is not lost.
        self.signal.task.register(cx.waker());
        self.signal.open.swap(false, Ordering::AcqRel)
    }

    /// The source gave something: it may have more without a new wake-up.
    fn reopen(&self) {
        self.signal.open.store(true, Ordering::Release);
    }
}

/// A future polled only after its own wake-ups. Made once and kept across the passes of a loop
/// (`&mut gate` in a `select!`).
pub struct Gate<F: ?Sized> {
    fut: Pin<Box<F>>,
    latch: Latch,
}

impl<F: Future> Gate<F> {
    pub fn new(fut: F) -> Gate<F> {
        Gate::pinned(Box::pin(fut))
    }
}

impl<F: Future + ?Sized> Gate<F> {
    /// A gate in front of a future already boxed (a `dyn Future` a struct can name).
    pub fn pinned(fut: Pin<Box<F>>) -> Gate<F> {
        Gate {
            fut,
            latch: Latch::new(),
        }
    }
}

impl<F: Future + ?Sized> Future for Gate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this.latch.take(cx) {
            return Poll::Pending;
        }
        let mut inner = Context::from_waker(&this.latch.waker);
        match this.fut.as_mut().poll(&mut inner) {
            Poll::Ready(v) => {
                this.latch.reopen();
                Poll::Ready(v)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A gate in front of a stream that the loop also uses for other things (a socket it writes to
/// as well): [`StreamGate::poll_next`] borrows the stream only for the poll.
pub struct StreamGate {
    latch: Latch,
}

impl Default for StreamGate {
    fn default() -> Self {
        StreamGate {
            latch: Latch::new(),
        }
    }
}

impl StreamGate {
    /// Polls `stream` for its next item if it was woken (or gave an item last time); otherwise
    /// Pending at once. Every Pending from the stream itself was registered with this gate's
    /// waker, so its next wake-up opens the gate.
    pub fn poll_next<S: Stream + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<S::Item>> {
        if !self.latch.take(cx) {
            return Poll::Pending;
        }
        let mut inner = Context::from_waker(&self.latch.waker);
        match Pin::new(stream).poll_next(&mut inner) {
            Poll::Ready(item) => {
                self.latch.reopen();
                Poll::Ready(item)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_gated_future_is_polled_again_only_after_its_wake_up() {
        let polls = Arc::new(AtomicUsize::new(0));
        let notify = Arc::new(tokio::sync::Notify::new());
        let (p, n) = (Arc::clone(&polls), Arc::clone(&notify));
        let mut gate = Gate::new(async move {
            let notified = n.notified();
            tokio::pin!(notified);
            std::future::poll_fn(|cx| {
                p.fetch_add(1, Ordering::SeqCst);
                notified.as_mut().poll(cx)
            })
            .await;
            7
        });
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Passes without a wake-up do not reach the future.
        for _ in 0..10 {
            assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Its own wake-up opens the gate.
        notify.notify_one();
        assert_eq!(Pin::new(&mut gate).poll(&mut cx), Poll::Ready(7));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_gated_stream_misses_nothing() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut stream = tokio_stream_from(rx);
        let mut gate = StreamGate::default();
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = std::future::poll_fn(|cx| gate.poll_next(&mut stream, cx)).await {
                got.push(v);
            }
            got
        });
        for i in 0..100 {
            tx.send(i).unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        drop(tx);
        assert_eq!(task.await.unwrap(), (0..100).collect::<Vec<_>>());
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<u32>,
    ) -> impl Stream<Item = u32> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
    }
}
