//! Compiles the `.proto` files with the vendored `protoc` (protoc is not installed on build hosts).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/mosaic/raft/v1/raft.proto",
        "proto/mosaic/kds/v1/kds.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Every service uses `crate::codec::LeanCodec`: tonic's prost codec with small buffers.
    tonic_prost_build::configure()
        .codec_path("crate::codec::LeanCodec")
        .compile_with_config(config, &files, &["proto"])?;
    Ok(())
}
