//! `mosaic-netns-relay`: the e2e/netns suite's delaying TCP relay (used when the kernel has no
//! `tc netem`), and a small echo server for the harness's own checks. See `relay.rs`.

fn main() -> std::process::ExitCode {
    let cfg = match mosaic_e2e_netns::relay::RelayConfig::parse(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(mosaic_e2e_netns::relay::run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
