//! The bounded channel a gRPC session task answers its stream through ([`channel`]), with each
//! message boxed in flight.
//!
//! tokio's mpsc keeps its slots in blocks of 32, each block allocated whole and kept while the
//! channel lives. Of `Result<DiscoveryResponse, Status>` (about 170 bytes), one block is over
//! 5 KiB per stream, for every KDS stream at the global and every SDS stream at a zone, even
//! when idle; of boxes it is 256 bytes. A message sent costs one allocation more, which at
//! these rates (a push per change, a response per certificate) does not show.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

/// The sending half, held by the session task.
#[derive(Debug)]
pub struct Sender<T>(mpsc::Sender<Box<Result<T, Status>>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// The stream was closed: the client went away (or the response stream was dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gRPC response stream is closed")]
pub struct Closed;

impl<T> Sender<T> {
    /// Sends one message (or the status that ends the stream), waiting while the channel is full.
    pub async fn send(&self, item: Result<T, Status>) -> Result<(), Closed> {
        self.0.send(Box::new(item)).await.map_err(|_| Closed)
    }

    /// Completes when the receiving half is gone.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

/// The receiving half: the response stream handed to tonic.
#[derive(Debug)]
pub struct ReceiverStream<T>(mpsc::Receiver<Box<Result<T, Status>>>);

impl<T> Stream for ReceiverStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| *b))
    }
}

/// A channel holding up to `bound` messages.
pub fn channel<T>(bound: usize) -> (Sender<T>, ReceiverStream<T>) {
    let (tx, rx) = mpsc::channel(bound);
    (Sender(tx), ReceiverStream(rx))
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn messages_and_the_ending_status_arrive_in_order_and_closing_is_seen() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.send(Ok(1)).await.unwrap();
        tx.send(Err(Status::unavailable("bye"))).await.unwrap();
        assert_eq!(rx.next().await.unwrap().unwrap(), 1);
        assert_eq!(rx.next().await.unwrap().unwrap_err().message(), "bye");
        drop(rx);
        tx.closed().await;
        assert_eq!(tx.send(Ok(2)).await, Err(Closed));
    }
}
