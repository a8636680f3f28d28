//! The Microsoft Graph calling API as data: serde models for calls, notifications, media
//! configurations, identities, operations and errors. No HTTP here.
