//! The person at this machine as a participant of the bot's calls: one room member (a sound
//! device, feature `device`) that the [`MediaHost`](super::media_host::MediaHost) puts into
//! **one call at a time**.
//!
//! # Which call gets it
//! - The first call whose media connects while the participant is free gets it: its member
//!   is opened ([`LocalParticipant::join`]) and added to that call's room. It hears the mix
//!   for it (the caller, the greeting, the echo, other participants) and is heard by the
//!   caller.
//! - When that call ends, the member leaves with the room and its [`LocalSession`] is dropped
//!   (for a sound device: the streams stop). The participant then joins the **oldest call
//!   still connected** (by the time its media connected), if any; otherwise it waits, idle,
//!   for the next call to connect.
//! - If joining fails (e.g. the sound card was unplugged between calls), that is logged and
//!   reported ([`SessionEvent::LocalFailed`](super::media_host::SessionEvent::LocalFailed)),
//!   the call goes on without it and the next call to connect tries again.
//! - If the member fails *during* a call (the device vanishes), the call goes on without it
//!   (the member is silent); it stays in that call until the call ends, and the next call
//!   opens it afresh (so a device that came back works again).

use std::sync::Arc;

use crate::media::member::Member;
use crate::media::room::MemberId;

/// What the host holds while the local participant is in a call; dropping it takes the
/// participant out (for a sound device: stops its streams).
pub trait LocalSession: Send + std::fmt::Debug {
    /// True while it has failed (the call goes on without it).
    fn is_lost(&self) -> bool;

    /// One line of counters for the log when it leaves a call (empty: nothing to say).
    fn report(&self) -> String {
        String::new()
    }
}

/// A local participant the media host can put into a call (see the module docs).
pub trait LocalParticipant: Send + Sync + std::fmt::Debug {
    /// A short description for logs and reports, e.g. the device names.
    fn describe(&self) -> String;

    /// Opens the participant as room member `id`: the member to add to the call's room and
    /// the session that keeps it running. May block (opening a device); the host calls it
    /// off the async threads.
    ///
    /// # Errors
    /// Why it cannot join now (text for logs and reports).
    fn join(&self, id: MemberId) -> Result<(Box<Member>, Box<dyn LocalSession>), String>;
}

/// Why the local participant could not be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// The binary was built without the `device` feature.
    #[error(
        "this mediabot was built without sound device support: rebuild with the `device` \
         feature (needs libasound2-dev), e.g. `cargo run --release --features device -- demo \
         --device`"
    )]
    NotBuilt,
    /// The device could not be opened (the text lists what exists or what it supports).
    #[error("sound device: {0}")]
    Device(String),
}

/// The sound device `name` (the default input and output when `None`; matching as
/// [`open_device_member`](super::device::open_device_member) documents: exact name, else
/// the first device whose name or description contains `name`, ignoring case) as the local
/// participant. The device is opened once now and closed again, so a missing device or one
/// that cannot do any usable format fails here, before any call.
///
/// # Errors
/// [`LocalError::NotBuilt`] without the `device` feature; [`LocalError::Device`] when the
/// device cannot be opened.
#[cfg(feature = "device")]
pub fn sound_device(name: Option<&str>) -> Result<Arc<dyn LocalParticipant>, LocalError> {
    let mut device = super::device::DeviceParticipant::new(
        name.map(str::to_owned),
        super::device::DeviceOptions::default(),
    );
    device
        .check()
        .map_err(|e| LocalError::Device(e.to_string()))?;
    Ok(Arc::new(device))
}

/// Without the `device` feature: always [`LocalError::NotBuilt`].
///
/// # Errors
/// Always.
#[cfg(not(feature = "device"))]
pub fn sound_device(name: Option<&str>) -> Result<Arc<dyn LocalParticipant>, LocalError> {
    let _ = name;
    Err(LocalError::NotBuilt)
}

#[cfg(all(test, not(feature = "device")))]
mod tests {
    use super::*;

    #[test]
    fn without_the_feature_the_error_says_how_to_rebuild() {
        let e = sound_device(Some("usb")).unwrap_err();
        assert_eq!(e, LocalError::NotBuilt);
        assert!(e.to_string().contains("--features device"), "{e}");
    }
}
