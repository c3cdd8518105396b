//! Compiles the gRPC protos and keeps their descriptor set for server reflection.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("switchboard_descriptor.bin"))
        .compile_protos(&["proto/switchboard/v1/switchboard.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
