//! The codec of Mosaic's own gRPC services ([`LeanCodec`]): prost, as tonic's default, but with
//! small initial buffers.
//!
//! tonic gives every stream an 8 KiB encode buffer and an 8 KiB decode buffer, kept for the
//! stream's life. A zone holds two KDS streams to the global and a data plane one SDS stream
//! to its zone, mostly idle, so at thousands of them those buffers were most of the memory per
//! connection (bench/README.md). Starting them at [`BUFFER_BYTES`] costs nothing in speed: a
//! buffer grows to the message it must hold, as before.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// The initial capacity of each stream's encode and decode buffer.
pub const BUFFER_BYTES: usize = 1024;
/// How much encoded data a response stream gathers before it hands a chunk to HTTP/2 (tonic's
/// default).
pub const YIELD_BYTES: usize = 32 * 1024;

/// prost encoding and decoding with [`BUFFER_BYTES`] initial buffers.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_BYTES)
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}

#[cfg(test)]
mod tests {
    use tonic::codec::{Decoder as _, Encoder as _};

    use super::*;

    #[test]
    fn both_directions_start_small_and_yield_as_tonic_does() {
        let mut codec =
            LeanCodec::<crate::kds::DiscoveryRequest, crate::kds::DiscoveryResponse>::default();
        let want = "BufferSettings { buffer_size: 1024, yield_threshold: 32768 }";
        assert_eq!(format!("{:?}", codec.encoder().buffer_settings()), want);
        assert_eq!(format!("{:?}", codec.decoder().buffer_settings()), want);
    }
}
