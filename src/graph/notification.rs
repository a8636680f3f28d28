//! Notifications the bot receives: the `commsNotifications` envelope, each `commsNotification`,
//! what its resource is (call, roster, operation, content sharing) and its `resourceData`, typed
//! when the `@odata.type` or the resource path says what it is.
//!
//! [`parse_notifications`] is the webhook's entry point: any byte string gives a value or a
//! [`GraphModelError`], never a panic. It does not limit sizes; the HTTP layer does.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::call::Call;
use super::enums::ChangeType;
use super::error::GraphModelError;
use super::ids::{CallId, OperationId};
use super::lenient::{ODataTag, odata, odata_is, odata_name};
use super::operation::CommsOperation;
use super::participant::{DeltaParticipants, Participant};

/// Longest call id accepted from a notification.
const MAX_ID_LEN: usize = 256;
/// Suffix of every `commsOperation` subtype name.
const OPERATION: &str = "operation";

/// Parses a webhook body as `commsNotifications`.
///
/// A legacy Skype-format body (see [`is_legacy_skype_body`]) gives
/// [`GraphModelError::LegacyFormat`], to be answered with 204 so the platform resends it in
/// Graph format.
pub fn parse_notifications(body: &[u8]) -> Result<CommsNotifications, GraphModelError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| {
        if is_legacy_skype_body(body) {
            GraphModelError::LegacyFormat
        } else {
            GraphModelError::from_json("commsNotifications", &e)
        }
    })
}

/// `true` for a legacy (Skype-format) incoming-call body: a JSON object with no `value` and at
/// least one of `callState`, `participants`, `isMultiparty` (reference §3.1).
pub fn is_legacy_skype_body(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Ok(map) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return false;
    };
    !map.contains_key("value")
        && ["callState", "participants", "isMultiparty"]
            .iter()
            .any(|k| map.contains_key(*k))
}

/// `commsNotifications`: a batch of notifications.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct CommsNotifications {
    /// Written as `#microsoft.graph.commsNotifications`.
    #[serde(
        rename = "@odata.type",
        default,
        serialize_with = "odata::comms_notifications"
    )]
    pub odata_type: ODataTag,
    /// The notifications, in the order sent.
    pub value: Vec<CommsNotification>,
    /// Unknown properties and annotations, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CommsNotifications {
    /// A batch of `value`.
    pub fn new(value: Vec<CommsNotification>) -> Self {
        Self {
            value,
            ..Self::default()
        }
    }
}

/// `commsNotification`: one change to a call or one of its collections.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(from = "RawNotification", rename_all = "camelCase")]
pub struct CommsNotification {
    /// Written as `#microsoft.graph.commsNotification`.
    #[serde(rename = "@odata.type", serialize_with = "odata::comms_notification")]
    pub odata_type: ODataTag,
    /// `created`, `updated`, `deleted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_type: Option<ChangeType>,
    /// Legacy `/app/calls/{id}` path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `/communications/calls/{id}[/participants|/operations/{opId}|/contentsharingsessions…]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    /// Callback URI, sometimes present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// The changed entity or collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_data: Option<ResourceData>,
    /// Unknown properties and annotations (`subscriptionId`, …), kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a notification's resource path points at.
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub enum ResourceKind {
    /// `/communications/calls/{id}`: the call itself.
    Call,
    /// `…/participants` (or one participant): the roster.
    Participants,
    /// `…/operations/{opId}`: a long-running operation.
    Operation(OperationId),
    /// `…/contentsharingsessions[/{id}]`.
    ContentSharingSessions,
    /// Anything else under the call.
    Other,
}

/// `resourceData`: one entity (call, operation) or a collection (participants, content sharing).
#[derive(Clone, Debug, PartialEq)]
pub enum ResourceData {
    /// A `call`.
    Call(Box<Call>),
    /// A `commsOperation` subtype.
    Operation(Box<CommsOperation>),
    /// A roster (array of `participant`).
    Participants(Vec<Participant>),
    /// A delta roster (`deltaParticipants`, delta roster mode).
    DeltaParticipants(Box<DeltaParticipants>),
    /// Anything else (or a typed value that did not read as its type), kept as received.
    Raw(Value),
}

impl CommsNotification {
    /// A notification about the call itself (`resourceUrl` `/communications/calls/{id}`).
    pub fn for_call(change_type: ChangeType, call_id: &CallId, call: Call) -> Self {
        Self {
            change_type: Some(change_type),
            resource_url: Some(format!("/communications/calls/{call_id}")),
            resource_data: Some(ResourceData::Call(Box::new(call))),
            ..Self::default()
        }
    }

    /// A roster notification (`…/participants`, `resourceData` an array).
    pub fn for_participants(call_id: &CallId, participants: Vec<Participant>) -> Self {
        Self {
            change_type: Some(ChangeType::Updated),
            resource_url: Some(format!("/communications/calls/{call_id}/participants")),
            resource_data: Some(ResourceData::Participants(participants)),
            ..Self::default()
        }
    }

    /// An operation notification (`…/operations/{opId}`; `deleted` when it finished).
    pub fn for_operation(
        change_type: ChangeType,
        call_id: &CallId,
        operation: CommsOperation,
    ) -> Self {
        let op_id = operation.id.clone().unwrap_or_default();
        Self {
            change_type: Some(change_type),
            resource_url: Some(format!(
                "/communications/calls/{call_id}/operations/{op_id}"
            )),
            resource_data: Some(ResourceData::Operation(Box::new(operation))),
            ..Self::default()
        }
    }

    /// The call this notification is about: `resourceData.id` of a call, else the `{id}` of
    /// `/communications/calls/{id}` in `resourceUrl`, else of the legacy `/app/calls/{id}` in
    /// `resource`. Ids that are empty, longer than 256 bytes or contain characters other than
    /// ASCII letters, digits and `-_.~:@` (or are `.`/`..`) are not returned, so the id is
    /// safe to put in a URL path.
    pub fn call_id(&self) -> Option<CallId> {
        let from_data = match &self.resource_data {
            Some(ResourceData::Call(c)) => c.id.clone(),
            _ => None,
        };
        let from_path = || self.resource_path().map(|(id, _)| CallId::new(id));
        from_data
            .filter(|id| is_path_safe(id.as_str()))
            .or_else(|| from_path().filter(|id| is_path_safe(id.as_str())))
    }

    /// What the resource path points at (`resourceUrl`, else legacy `resource`); `None` when
    /// neither is a call path.
    pub fn resource_kind(&self) -> Option<ResourceKind> {
        self.resource_path().map(|(_, kind)| kind)
    }

    /// The typed call when `resourceData` is a call.
    pub fn call_data(&self) -> Option<&Call> {
        match &self.resource_data {
            Some(ResourceData::Call(c)) => Some(c),
            _ => None,
        }
    }

    /// The typed roster when `resourceData` is a participants array.
    pub fn participants_data(&self) -> Option<&[Participant]> {
        match &self.resource_data {
            Some(ResourceData::Participants(p)) => Some(p),
            _ => None,
        }
    }

    /// The typed operation when `resourceData` is an operation.
    pub fn operation_data(&self) -> Option<&CommsOperation> {
        match &self.resource_data {
            Some(ResourceData::Operation(o)) => Some(o),
            _ => None,
        }
    }

    /// The typed delta roster when `resourceData` is a `deltaParticipants` object.
    pub fn delta_participants(&self) -> Option<&DeltaParticipants> {
        match &self.resource_data {
            Some(ResourceData::DeltaParticipants(d)) => Some(d),
            _ => None,
        }
    }

    /// Reads `resourceData` as a call, reporting why it is not one: `Ok(None)` when there is no
    /// object resource data, an error when it is an object that does not read as a call.
    pub fn parse_call(&self) -> Result<Option<Call>, GraphModelError> {
        match &self.resource_data {
            Some(ResourceData::Call(c)) => Ok(Some((**c).clone())),
            Some(ResourceData::Raw(v @ Value::Object(_))) => Call::deserialize(v)
                .map(Some)
                .map_err(|e| GraphModelError::from_json("call", &e)),
            _ => Ok(None),
        }
    }

    fn resource_path(&self) -> Option<(&str, ResourceKind)> {
        self.resource_url
            .as_deref()
            .and_then(parse_call_path)
            .or_else(|| self.resource.as_deref().and_then(parse_call_path))
    }
}

impl Serialize for ResourceData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Call(c) => c.serialize(s),
            Self::Operation(o) => o.serialize(s),
            Self::Participants(p) => p.serialize(s),
            Self::DeltaParticipants(d) => d.serialize(s),
            Self::Raw(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ResourceData {
    /// Reads without a resource path: typed only by `@odata.type`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| Self::classify(v, None))
    }
}

impl ResourceData {
    /// Types a raw `resourceData` by its `@odata.type`, or by the resource path when the type
    /// is missing. A value that does not read as its type stays [`ResourceData::Raw`].
    pub fn classify(value: Value, kind: Option<&ResourceKind>) -> Self {
        match &value {
            Value::Object(map) => {
                let odata_type = map.get("@odata.type").and_then(Value::as_str);
                let is_call = match odata_type {
                    Some(t) => odata_is(t, "call"),
                    None => matches!(kind, Some(ResourceKind::Call)),
                };
                let is_operation = match odata_type {
                    Some(t) => {
                        let name = odata_name(t).as_bytes();
                        name.len() > OPERATION.len()
                            && name[name.len() - OPERATION.len()..]
                                .eq_ignore_ascii_case(OPERATION.as_bytes())
                    }
                    None => matches!(kind, Some(ResourceKind::Operation(_))),
                };
                let is_delta = match odata_type {
                    Some(t) => odata_is(t, "deltaParticipants"),
                    None => {
                        matches!(kind, Some(ResourceKind::Participants))
                            && map.contains_key("participants")
                    }
                };
                if is_call {
                    if let Ok(c) = Call::deserialize(&value) {
                        return Self::Call(Box::new(c));
                    }
                } else if is_delta {
                    if let Ok(d) = DeltaParticipants::deserialize(&value) {
                        return Self::DeltaParticipants(Box::new(d));
                    }
                } else if is_operation && let Ok(o) = CommsOperation::deserialize(&value) {
                    return Self::Operation(Box::new(o));
                }
            }
            Value::Array(items) => {
                let typed_as_participants = !items.is_empty()
                    && items.iter().all(|i| {
                        i.get("@odata.type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| odata_is(t, "participant"))
                    });
                if (typed_as_participants || matches!(kind, Some(ResourceKind::Participants)))
                    && let Ok(p) = Vec::<Participant>::deserialize(&value)
                {
                    return Self::Participants(p);
                }
            }
            _ => {}
        }
        Self::Raw(value)
    }
}

/// The wire shape, before `resourceData` is typed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNotification {
    #[serde(rename = "@odata.type", default)]
    odata_type: ODataTag,
    #[serde(default)]
    change_type: Option<ChangeType>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    resource_url: Option<String>,
    #[serde(default)]
    callback_uri: Option<String>,
    #[serde(default)]
    resource_data: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl From<RawNotification> for CommsNotification {
    fn from(raw: RawNotification) -> Self {
        let kind = raw
            .resource_url
            .as_deref()
            .and_then(parse_call_path)
            .or_else(|| raw.resource.as_deref().and_then(parse_call_path))
            .map(|(_, k)| k);
        let resource_data = raw
            .resource_data
            .filter(|v| !v.is_null())
            .map(|v| ResourceData::classify(v, kind.as_ref()));
        Self {
            odata_type: raw.odata_type,
            change_type: raw.change_type,
            resource: raw.resource,
            resource_url: raw.resource_url,
            callback_uri: raw.callback_uri,
            resource_data,
            extra: raw.extra,
        }
    }
}

/// Finds `…/communications/calls/{id}[/rest]` or `…/app/calls/{id}[/rest]` in a path or URL.
fn parse_call_path(url: &str) -> Option<(&str, ResourceKind)> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
        None => url,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.windows(3).position(|w| {
        (w[0].eq_ignore_ascii_case("communications") || w[0].eq_ignore_ascii_case("app"))
            && w[1].eq_ignore_ascii_case("calls")
    })?;
    let id = segments[at + 2];
    let rest = &segments[at + 3..];
    let kind = match rest {
        [] => ResourceKind::Call,
        [first, ..] if first.eq_ignore_ascii_case("participants") => ResourceKind::Participants,
        [first, op] if first.eq_ignore_ascii_case("operations") => {
            ResourceKind::Operation(OperationId::new(*op))
        }
        [first, ..] if first.eq_ignore_ascii_case("contentsharingsessions") => {
            ResourceKind::ContentSharingSessions
        }
        _ => ResourceKind::Other,
    };
    Some((id, kind))
}

fn is_path_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~:@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::enums::CallState;

    fn one(json: &str) -> CommsNotification {
        let batch = parse_notifications(format!(r##"{{"value":[{json}]}}"##).as_bytes()).unwrap();
        batch.value.into_iter().next().unwrap()
    }

    #[test]
    fn call_id_prefers_resource_data_then_url_then_legacy_resource() {
        let n = one(
            r##"{"changeType":"created","resourceUrl":"/communications/calls/u1","resourceData":{"@odata.type":"#microsoft.graph.call","id":"d1"}}"##,
        );
        assert_eq!(n.call_id().unwrap(), "d1");
        let n = one(
            r##"{"changeType":"updated","resourceUrl":"/communications/calls/u1","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established"}}"##,
        );
        assert_eq!(n.call_id().unwrap(), "u1");
        let n =
            one(r##"{"resource":"/app/calls/legacy-1","resourceData":{"state":"established"}}"##);
        assert_eq!(n.call_id().unwrap(), "legacy-1");
        assert_eq!(n.call_data().unwrap().state, Some(CallState::Established));
        let n = one(
            r##"{"resourceUrl":"https://graph.microsoft.com/v1.0/communications/calls/abc/operations/op9?x=1"}"##,
        );
        assert_eq!(n.call_id().unwrap(), "abc");
        assert_eq!(
            n.resource_kind(),
            Some(ResourceKind::Operation(OperationId::new("op9")))
        );
    }

    #[test]
    fn unsafe_call_ids_are_not_returned() {
        let n = one(
            r##"{"resourceUrl":"/communications/calls/..","resourceData":{"@odata.type":"#microsoft.graph.call","id":"a/b"}}"##,
        );
        assert_eq!(n.call_id(), None);
        let n = one(r##"{"resourceUrl":"/somewhere/else"}"##);
        assert_eq!(n.call_id(), None);
        assert_eq!(n.resource_kind(), None);
    }

    #[test]
    fn resource_kinds() {
        let kind = |p: &str| parse_call_path(p).map(|(_, k)| k);
        assert_eq!(kind("/communications/calls/a"), Some(ResourceKind::Call));
        assert_eq!(
            kind("/communications/calls/a/participants"),
            Some(ResourceKind::Participants)
        );
        assert_eq!(
            kind("/communications/calls/a/participants/p"),
            Some(ResourceKind::Participants)
        );
        assert_eq!(
            kind("/communications/calls/a/contentSharingSessions/s"),
            Some(ResourceKind::ContentSharingSessions)
        );
        assert_eq!(
            kind("/communications/calls/a/audioRoutingGroups"),
            Some(ResourceKind::Other)
        );
        assert_eq!(kind("/communications/calls"), None);
        assert_eq!(kind(""), None);
        assert_eq!(kind("https://"), None);
    }

    #[test]
    fn untyped_resource_data_is_typed_by_path() {
        let n = one(
            r##"{"resourceUrl":"/communications/calls/a/participants","resourceData":[{"id":"p1"}]}"##,
        );
        assert_eq!(n.participants_data().unwrap().len(), 1);
        let n = one(
            r##"{"resourceUrl":"/communications/calls/a/operations/o","resourceData":{"status":"completed"}}"##,
        );
        assert!(n.operation_data().unwrap().is_finished());
    }

    #[test]
    fn unreadable_call_stays_raw_and_parse_call_says_why() {
        let n = one(
            r##"{"resourceUrl":"/communications/calls/a","resourceData":{"@odata.type":"#microsoft.graph.call","state":5}}"##,
        );
        assert!(n.call_data().is_none());
        assert!(matches!(n.resource_data, Some(ResourceData::Raw(_))));
        assert!(matches!(
            n.parse_call(),
            Err(GraphModelError::Shape { what: "call", .. })
        ));
    }

    #[test]
    fn built_notifications_read_back_equal() {
        let id = CallId::new("c-1");
        let call = Call {
            state: Some(CallState::Established),
            ..Call::default()
        };
        let op = CommsOperation {
            id: Some(OperationId::new("op-1")),
            ..CommsOperation::default()
        };
        let batch = CommsNotifications::new(vec![
            CommsNotification::for_call(ChangeType::Updated, &id, call),
            CommsNotification::for_participants(&id, vec![Participant::default()]),
            CommsNotification::for_operation(ChangeType::Deleted, &id, op),
        ]);
        let bytes = serde_json::to_vec(&batch).unwrap();
        let back = parse_notifications(&bytes).unwrap();
        assert_eq!(back, batch);
        assert!(back.value.iter().all(|n| n.call_id() == Some(id.clone())));
        assert_eq!(
            back.value[2].resource_kind(),
            Some(ResourceKind::Operation(OperationId::new("op-1")))
        );
    }

    #[test]
    fn legacy_body_is_recognised() {
        let legacy = br##"{"id":"x","participants":[{"identity":{},"originator":true}],"isMultiparty":false,"callState":"incoming"}"##;
        assert!(is_legacy_skype_body(legacy));
        assert_eq!(
            parse_notifications(legacy),
            Err(GraphModelError::LegacyFormat)
        );
        assert!(!is_legacy_skype_body(br##"{"value":[],"callState":"x"}"##));
        assert!(!is_legacy_skype_body(b"[1,2]"));
    }
}
