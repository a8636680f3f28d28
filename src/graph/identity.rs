//! `identity` and `identitySet` / `communicationsIdentitySet`: who a party is.
//!
//! An identity set holds (usually) one identity under a key naming its kind: a Teams `user`, a
//! bot `application` or `applicationInstance` (resource account), a `phone` number (E.164), a
//! `guest`, an `encrypted` identity (when the app lacks calling permissions), … Unknown keys and
//! annotations are kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::enums::EndpointType;
use super::lenient::{ODataTag, odata};

/// `identity` (an open type): an id and a display name, plus `tenantId`/`identityProvider` as
/// call payloads add them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Written as `#microsoft.graph.identity`.
    #[serde(rename = "@odata.type", default, serialize_with = "odata::identity")]
    pub odata_type: ODataTag,
    /// The id: an AAD object id, an app id, or an E.164 number for `phone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Tenant of the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Identity provider, e.g. `AAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Identity {
    /// An identity with only an id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the tenant id.
    #[must_use]
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }
}

/// Which key of an [`IdentitySet`] an identity sits under.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum IdentityKind {
    /// `user`: a Teams/AAD user.
    User,
    /// `application`: a bot, by app id.
    Application,
    /// `applicationInstance`: a bot's resource account (needed for PSTN).
    ApplicationInstance,
    /// `phone`: a PSTN number.
    Phone,
    /// `guest`: an anonymous/guest user.
    Guest,
    /// `encrypted`: an opaque identity the app may not decrypt.
    Encrypted,
    /// `onPremises`: an on-premises user.
    OnPremises,
    /// `azureCommunicationServicesUser` (older name `acsUser`).
    AzureCommunicationServicesUser,
    /// `assertedIdentity`.
    AssertedIdentity,
    /// `device`.
    Device,
}

impl IdentityKind {
    /// The canonical key in an identity set.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Application => "application",
            Self::ApplicationInstance => "applicationInstance",
            Self::Phone => "phone",
            Self::Guest => "guest",
            Self::Encrypted => "encrypted",
            Self::OnPremises => "onPremises",
            Self::AzureCommunicationServicesUser => "azureCommunicationServicesUser",
            Self::AssertedIdentity => "assertedIdentity",
            Self::Device => "device",
        }
    }
}

/// `identitySet` / `communicationsIdentitySet`: an identity under a key naming its kind.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySet {
    /// Written as `#microsoft.graph.identitySet`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::identity_set"
    )]
    pub odata_type: ODataTag,
    /// A Teams/AAD user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Identity>,
    /// A bot application (app id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Identity>,
    /// A bot's resource account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_instance: Option<Identity>,
    /// A phone number (`id` in E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Identity>,
    /// A guest user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Identity>,
    /// An encrypted identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Identity>,
    /// An on-premises user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises: Option<Identity>,
    /// An Azure Communication Services user (read also from the older `acsUser`).
    #[serde(default, alias = "acsUser", skip_serializing_if = "Option::is_none")]
    pub azure_communication_services_user: Option<Identity>,
    /// An asserted identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asserted_identity: Option<Identity>,
    /// A device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Identity>,
    /// `communicationsIdentitySet.endpointType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<EndpointType>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IdentitySet {
    /// A set holding one identity of the given kind.
    pub fn of(kind: IdentityKind, identity: Identity) -> Self {
        let mut set = Self::default();
        *set.slot_mut(kind) = Some(identity);
        set
    }

    /// A Teams user.
    pub fn user(id: impl Into<String>) -> Self {
        Self::of(IdentityKind::User, Identity::with_id(id))
    }

    /// A bot application by app id.
    pub fn application(app_id: impl Into<String>) -> Self {
        Self::of(IdentityKind::Application, Identity::with_id(app_id))
    }

    /// A bot resource account.
    pub fn application_instance(id: impl Into<String>) -> Self {
        Self::of(IdentityKind::ApplicationInstance, Identity::with_id(id))
    }

    /// A phone number (E.164, e.g. `+12345678901`).
    pub fn phone(number: impl Into<String>) -> Self {
        Self::of(IdentityKind::Phone, Identity::with_id(number))
    }

    /// The identity under `kind`, if any.
    pub fn get(&self, kind: IdentityKind) -> Option<&Identity> {
        match kind {
            IdentityKind::User => self.user.as_ref(),
            IdentityKind::Application => self.application.as_ref(),
            IdentityKind::ApplicationInstance => self.application_instance.as_ref(),
            IdentityKind::Phone => self.phone.as_ref(),
            IdentityKind::Guest => self.guest.as_ref(),
            IdentityKind::Encrypted => self.encrypted.as_ref(),
            IdentityKind::OnPremises => self.on_premises.as_ref(),
            IdentityKind::AzureCommunicationServicesUser => {
                self.azure_communication_services_user.as_ref()
            }
            IdentityKind::AssertedIdentity => self.asserted_identity.as_ref(),
            IdentityKind::Device => self.device.as_ref(),
        }
    }

    fn slot_mut(&mut self, kind: IdentityKind) -> &mut Option<Identity> {
        match kind {
            IdentityKind::User => &mut self.user,
            IdentityKind::Application => &mut self.application,
            IdentityKind::ApplicationInstance => &mut self.application_instance,
            IdentityKind::Phone => &mut self.phone,
            IdentityKind::Guest => &mut self.guest,
            IdentityKind::Encrypted => &mut self.encrypted,
            IdentityKind::OnPremises => &mut self.on_premises,
            IdentityKind::AzureCommunicationServicesUser => {
                &mut self.azure_communication_services_user
            }
            IdentityKind::AssertedIdentity => &mut self.asserted_identity,
            IdentityKind::Device => &mut self.device,
        }
    }

    /// The most specific identity present, in the order user, applicationInstance,
    /// application, phone, guest, acs user, onPremises, assertedIdentity, device, encrypted.
    pub fn primary(&self) -> Option<(IdentityKind, &Identity)> {
        const ORDER: [IdentityKind; 10] = [
            IdentityKind::User,
            IdentityKind::ApplicationInstance,
            IdentityKind::Application,
            IdentityKind::Phone,
            IdentityKind::Guest,
            IdentityKind::AzureCommunicationServicesUser,
            IdentityKind::OnPremises,
            IdentityKind::AssertedIdentity,
            IdentityKind::Device,
            IdentityKind::Encrypted,
        ];
        ORDER
            .into_iter()
            .find_map(|k| self.get(k).map(|identity| (k, identity)))
    }

    /// `true` when no identity key is set.
    pub fn is_empty(&self) -> bool {
        self.primary().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acs_user_alias_is_read_and_canonical_name_written() {
        let set: IdentitySet =
            serde_json::from_str(r##"{"acsUser":{"id":"8:acs:1"},"endpointType":"Default"}"##)
                .unwrap();
        assert_eq!(
            set.primary().map(|(k, i)| (k, i.id.as_deref())),
            Some((
                IdentityKind::AzureCommunicationServicesUser,
                Some("8:acs:1")
            ))
        );
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["@odata.type"], "#microsoft.graph.identitySet");
        assert_eq!(json["azureCommunicationServicesUser"]["id"], "8:acs:1");
        assert_eq!(json["endpointType"], "default");
        assert!(json.get("acsUser").is_none());
    }

    #[test]
    fn unknown_keys_survive() {
        let set: IdentitySet = serde_json::from_str(
            r##"{"user":{"id":"u","isAnonymous":false},"spoolUser":{"id":"s"}}"##,
        )
        .unwrap();
        assert_eq!(set.user.as_ref().unwrap().extra["isAnonymous"], false);
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["spoolUser"]["id"], "s");
    }

    #[test]
    fn phone_builder_has_e164_id() {
        let set = IdentitySet::phone("+12345678901");
        assert_eq!(set.primary().unwrap().0, IdentityKind::Phone);
        assert!(!set.is_empty());
        assert!(IdentitySet::default().is_empty());
    }
}
