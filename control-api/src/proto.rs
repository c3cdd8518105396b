//! Generated gRPC types for `switchboard.v1` (see `proto/switchboard/v1/`).
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("switchboard.v1");

/// The encoded descriptor set, served through gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("switchboard_descriptor");
