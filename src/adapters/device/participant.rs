//! A sound device as the media host's local participant
//! ([`LocalParticipant`]): opened afresh for each call it joins, closed when that call ends.

use crate::adapters::device::{DeviceError, DeviceHandle, DeviceOptions, open_device_member};
use crate::adapters::local_participant::{LocalParticipant, LocalSession};
use crate::media::member::Member;
use crate::media::room::MemberId;

/// The sound device `name` (default devices when `None`) opened with `options` for each call
/// it joins.
#[derive(Clone, Debug)]
pub struct DeviceParticipant {
    name: Option<String>,
    options: DeviceOptions,
    description: String,
}

impl DeviceParticipant {
    /// The device `name` (see [`open_device_member`] for how names match), not opened yet.
    pub fn new(name: Option<String>, options: DeviceOptions) -> Self {
        let description = name.clone().unwrap_or_else(|| "default".to_owned());
        Self {
            name,
            options,
            description,
        }
    }

    /// Opens the device once and closes it again, so a device that is missing or cannot do
    /// a usable format is reported before any call; remembers which devices were opened (for
    /// [`LocalParticipant::describe`]).
    ///
    /// # Errors
    /// What [`open_device_member`] returns.
    pub fn check(&mut self) -> Result<(), DeviceError> {
        let (member, handle) =
            open_device_member(MemberId(u64::MAX), self.name.as_deref(), &self.options)?;
        let side = |f: Option<&crate::adapters::device::StreamFormat>| {
            f.map_or_else(|| "none".to_owned(), |f| f.device.clone())
        };
        self.description = format!(
            "input {}, output {}",
            side(handle.input()),
            side(handle.output())
        );
        drop(handle);
        drop(member);
        Ok(())
    }
}

impl LocalParticipant for DeviceParticipant {
    fn describe(&self) -> String {
        format!("sound device ({})", self.description)
    }

    fn join(&self, id: MemberId) -> Result<(Box<Member>, Box<dyn LocalSession>), String> {
        let (member, handle) = open_device_member(id, self.name.as_deref(), &self.options)
            .map_err(|e| e.to_string())?;
        Ok((member, Box::new(handle)))
    }
}

impl LocalSession for DeviceHandle {
    fn is_lost(&self) -> bool {
        Self::is_lost(self)
    }

    fn report(&self) -> String {
        let s = self.stats();
        format!(
            "capture {} callbacks, {} frames, {} overruns, {} trimmed; playback {} callbacks, \
             {} frames, {} underruns, {} trimmed; {} stream errors ({} xruns){}",
            s.capture_callbacks,
            s.capture_frames,
            s.capture_overruns,
            s.capture_trimmed,
            s.playback_callbacks,
            s.playback_frames,
            s.playback_underruns,
            s.playback_trimmed,
            s.stream_errors,
            s.xruns,
            self.last_error()
                .map_or_else(String::new, |e| format!("; last error: {e}"))
        )
    }
}
