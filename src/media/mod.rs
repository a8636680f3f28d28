//! The sans-IO real-time media core: frames, packets, jitter buffer, codec, mixer and rooms.
//!
//! Nothing here reads the clock, spawns threads or touches sockets: time comes in as `now`.
//! The shard threads that drive this code live in [`crate::adapters`].
//! See the crate docs for the real-time rules every type here follows.

pub mod analysis;
pub mod codec;
pub mod echo;
pub mod endpoint;
pub mod frame;
pub mod histogram;
pub mod jitter;
pub mod leg;
pub mod member;
pub mod mixer;
pub mod ogg_opus;
pub mod packet;
pub mod prompt;
pub mod record_queue;
pub mod recorder;
pub mod resample;
pub mod room;
pub mod speaker;
pub mod stream_resampler;
pub mod ticker;
pub mod wav;
