//! [`LeanSds`]: Envoy's `SecretDiscoveryService` server whose `StreamSecrets` streams use
//! [`LeanCodec`]'s small buffers.
//!
//! The server `envoy-types` generates gives every stream tonic's default 8 KiB encode and decode
//! buffers. A zone holds one `StreamSecrets` stream per data plane for the data plane's life, so
//! at 10,000 of them those buffers alone were 160 MiB. `StreamSecrets` is answered here with
//! the same codec settings as Mosaic's own services; every other method (`FetchSecrets`,
//! `DeltaSecrets`), short-lived or refused, goes to the generated server unchanged.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    Request, Response, Status, Streaming,
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, StreamingService},
};

use crate::{
    codec::LeanCodec,
    envoy::envoy::service::{
        discovery::v3::{DiscoveryRequest, DiscoveryResponse},
        secret::v3::secret_discovery_service_server::{
            SecretDiscoveryService, SecretDiscoveryServiceServer,
        },
    },
};

/// The gRPC path of `StreamSecrets`.
pub const STREAM_SECRETS: &str = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets";

/// Envoy's SDS service over `T`, with `StreamSecrets` on [`LeanCodec`].
pub struct LeanSds<T> {
    inner: Arc<T>,
    generated: SecretDiscoveryServiceServer<T>,
    max_decoding_message_size: Option<usize>,
}

impl<T> Clone for LeanSds<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            generated: self.generated.clone(),
            max_decoding_message_size: self.max_decoding_message_size,
        }
    }
}

impl<T: SecretDiscoveryService> LeanSds<T> {
    /// Serves `inner`.
    pub fn new(inner: T) -> Self {
        let inner = Arc::new(inner);
        Self {
            generated: SecretDiscoveryServiceServer::from_arc(inner.clone()),
            inner,
            max_decoding_message_size: None,
        }
    }

    /// The largest request message accepted, on every method (tonic's default is 4 MiB).
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.generated = self.generated.max_decoding_message_size(limit);
        self.max_decoding_message_size = Some(limit);
        self
    }
}

impl<T> NamedService for LeanSds<T> {
    const NAME: &'static str = "envoy.service.secret.v3.SecretDiscoveryService";
}

/// `StreamSecrets` of `T`, as tonic's streaming handler.
struct StreamSecrets<T>(Arc<T>);

impl<T: SecretDiscoveryService> StreamingService<DiscoveryRequest> for StreamSecrets<T> {
    type Response = DiscoveryResponse;
    type ResponseStream = T::StreamSecretsStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.stream_secrets(request).await })
    }
}

impl<T, B> Service<http::Request<B>> for LeanSds<T>
where
    T: SecretDiscoveryService,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != STREAM_SECRETS {
            return self.generated.call(req);
        }
        let method = StreamSecrets(self.inner.clone());
        let limit = self.max_decoding_message_size;
        Box::pin(async move {
            let mut grpc =
                Grpc::new(LeanCodec::default()).apply_max_message_size_config(limit, None);
            Ok(grpc.streaming(method, req).await)
        })
    }
}
