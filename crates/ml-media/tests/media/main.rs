//! Integration tests of ml-media against real media (the speech sample
//! wrapped by Debian's ffmpeg), a real HTTP server and a real S3-compatible
//! server. One test binary, so it links once.

mod decode;
mod http;
mod local;
mod s3;
mod server;
mod support;
