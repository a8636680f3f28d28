//! Scripted callers: who rings the bot, what the incoming `call` resource looks like, how long
//! the bot has to decide, and what the caller does afterwards.
//!
//! Each [`Scenario`] builds a realistic Graph `call` (ids, tenant, `myParticipantId`,
//! `callChainId`, source/targets, regions, and the scenario's extras: `callRoutes` for PSTN,
//! `chatInfo` + meeting info + `incomingContext` for group calls and meetings,
//! `applicationMetadata.botData` for policy-based recording) shaped like the payloads in
//! `reference/graph-calling.md` §3.3 and §3.8. A [`Script`] says what the caller does:
//! hang up some time after the call is established, or give up while it still rings.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::graph::{Call, IdentityKind, MeetingInfo};

/// The kind of scripted caller.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, Hash, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scenario {
    /// A Teams user calls the bot directly (P2P); the target is the bot's application.
    #[default]
    #[serde(alias = "P2p", alias = "P2P", alias = "p2P")]
    P2p,
    /// A phone number (E.164) calls the bot's resource account (applicationInstance).
    #[serde(alias = "Pstn", alias = "PSTN", alias = "phone")]
    Pstn,
    /// The bot is invited into a scheduled meeting: `chatInfo` + `organizerMeetingInfo`.
    #[serde(alias = "Meeting")]
    Meeting,
    /// The bot is invited into a group call: `chatInfo` + `tokenMeetingInfo` + `incomingContext`.
    #[serde(alias = "GroupCall", alias = "group")]
    GroupCall,
    /// A Teams compliance-recording invitation (`botData.inviteReasons` =
    /// `["PolicyBasedRecording"]`): only 5 s to answer.
    #[serde(
        alias = "PolicyRecording",
        alias = "pbr",
        alias = "policyBasedRecording"
    )]
    PolicyRecording,
}

impl Scenario {
    /// Every scenario, in a stable order (the demo rings them all).
    pub const ALL: [Self; 5] = [
        Self::P2p,
        Self::Pstn,
        Self::Meeting,
        Self::GroupCall,
        Self::PolicyRecording,
    ];

    /// The control-API spelling (`p2p`, `pstn`, `meeting`, `groupCall`, `policyRecording`).
    pub fn name(self) -> &'static str {
        match self {
            Self::P2p => "p2p",
            Self::Pstn => "pstn",
            Self::Meeting => "meeting",
            Self::GroupCall => "groupCall",
            Self::PolicyRecording => "policyRecording",
        }
    }

    /// The scenario a call resource looks like (for calls imported from saved notifications):
    /// policy recording by `botData`, meetings by meeting info (`tokenMeetingInfo` → group
    /// call), PSTN by a phone caller, P2P otherwise.
    pub fn classify(call: &Call) -> Self {
        if call.is_policy_based_recording() {
            Self::PolicyRecording
        } else if call.is_meeting() {
            match &call.meeting_info {
                Some(MeetingInfo::Token(_)) => Self::GroupCall,
                _ => Self::Meeting,
            }
        } else if call
            .source
            .as_ref()
            .and_then(|s| s.identity.as_ref())
            .is_some_and(|i| i.get(IdentityKind::Phone).is_some())
        {
            Self::Pstn
        } else {
            Self::P2p
        }
    }

    /// True for policy-based recording invitations (the 5 s answer window).
    pub fn is_policy_recording(self) -> bool {
        self == Self::PolicyRecording
    }

    /// The caller's `resultInfo` when it hangs up an established call (reference §4.6:
    /// 200/4521 P2P, 200/4097 group, 200/540000 PSTN user hung up).
    pub fn hangup_result(self) -> (i32, i32, &'static str) {
        match self {
            Self::P2p => (
                200,
                4521,
                "The conversation was ended by the other participant.",
            ),
            Self::Pstn => (200, 540000, "The PSTN user hung up."),
            Self::Meeting | Self::GroupCall | Self::PolicyRecording => {
                (200, 4097, "The call was ended by the other participant.")
            }
        }
    }

    /// Builds the incoming `call` resource (`state: incoming`).
    pub fn build(self, p: &CallParams) -> Call {
        // The JSON below is written to the graph model's shape; the tests read every
        // scenario back, so a mismatch is a bug caught there, not input from the network.
        serde_json::from_value(self.build_json(p)).unwrap_or_default()
    }

    /// The incoming `call` resource as canonical Graph JSON.
    pub fn build_json(self, p: &CallParams) -> Value {
        let tenant = &p.tenant_id;
        let mut call = json!({
            "@odata.type": "#microsoft.graph.call",
            "@odata.id": format!("/communications/calls/{}", p.call_id),
            "id": p.call_id,
            "state": "incoming",
            "direction": "incoming",
            "callbackUri": p.bot_url,
            "requestedModalities": ["audio"],
            "tenantId": tenant,
            "myParticipantId": p.my_participant_id,
            "callChainId": p.call_chain_id,
            "subject": null,
            "resultInfo": null,
            "answeredBy": null,
            "chatInfo": null,
            "meetingInfo": null,
            "toneInfo": null,
            "transcription": null,
            "mediaState": null,
            "meetingCapability": null,
            "callRoutes": [],
            "activeModalities": [],
        });
        let user = |name: &str| json!({ "user": identity(&p.caller_id, name, Some(tenant)) });
        let source = |identity_set: Value, region: &str| {
            json!({
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": tagged_identity_set(identity_set),
                "endpointType": "default",
                "region": region,
                "languageId": "en-US",
                "countryCode": "US",
                "id": p.source_participant_id,
            })
        };
        let target = |identity_set: Value| {
            json!([{
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": tagged_identity_set(identity_set),
                "endpointType": "default",
                "id": p.my_participant_id,
            }])
        };
        let app = json!({ "application": identity(&p.app_id, &p.bot_name, None) });
        let instance = json!({
            "applicationInstance": identity(&p.app_instance_id, &p.bot_name, Some(tenant))
        });
        let chat_info = json!({
            "@odata.type": "#microsoft.graph.chatInfo",
            "threadId": format!("19:meeting_{}@thread.v2", p.thread_key),
            "messageId": "0",
            "replyChainMessageId": null,
        });
        let incoming_context = json!({
            "@odata.type": "#microsoft.graph.incomingContext",
            "sourceParticipantId": p.source_participant_id,
            "observedParticipantId": p.source_participant_id,
            "onBehalfOf": null,
            "transferor": null,
        });
        let token_meeting = json!({
            "@odata.type": "#microsoft.graph.tokenMeetingInfo",
            "token": p.meeting_token,
        });
        let map = call
            .as_object_mut()
            .expect("json! object literal above is an object");
        match self {
            Self::P2p => {
                map.insert("source".into(), source(user("Adele Vance"), "amer"));
                map.insert("targets".into(), target(app));
            }
            Self::Pstn => {
                let phone = json!({ "phone": identity(&p.phone_number, "", None) });
                map.insert("source".into(), source(phone, "amer"));
                map.insert("targets".into(), target(instance.clone()));
                map.insert(
                    "callRoutes".into(),
                    json!([{
                        "@odata.type": "#microsoft.graph.callRoute",
                        "original": tagged_identity_set(json!({
                            "phone": identity(&p.bot_phone_number, "", None)
                        })),
                        "final": tagged_identity_set(instance),
                        "routingType": "lookup",
                    }]),
                );
            }
            Self::Meeting => {
                map.insert("source".into(), source(user("Megan Bowen"), "emea"));
                map.insert("targets".into(), target(app));
                map.insert("chatInfo".into(), chat_info);
                map.insert(
                    "meetingInfo".into(),
                    json!({
                        "@odata.type": "#microsoft.graph.organizerMeetingInfo",
                        "organizer": tagged_identity_set(user("Megan Bowen")),
                        "allowConversationWithoutHost": true,
                    }),
                );
                map.insert("incomingContext".into(), incoming_context);
            }
            Self::GroupCall => {
                map.insert("source".into(), source(user("Lynne Robbins"), "apac"));
                map.insert("targets".into(), target(instance));
                map.insert("chatInfo".into(), chat_info);
                map.insert("meetingInfo".into(), token_meeting);
                map.insert("incomingContext".into(), incoming_context);
            }
            Self::PolicyRecording => {
                map.insert("source".into(), source(user("Diego Siciliani"), "amer"));
                map.insert("targets".into(), target(instance));
                map.insert("chatInfo".into(), chat_info);
                map.insert("meetingInfo".into(), token_meeting);
                map.insert("incomingContext".into(), incoming_context);
                map.insert(
                    "applicationMetadata".into(),
                    json!({
                        "botData": {
                            "mediaHostedRegion": "USEA",
                            "user": { "participationMethod": "caller", "clientLocation": "US" },
                            "otherSideUser": {
                                "id": p.other_user_id,
                                "participantId": p.other_participant_id,
                                "tenantId": tenant,
                                "onBehalfOf": null,
                                "participationMethod": "callee",
                                "clientLocation": "US",
                            },
                            "inviteReasons": ["PolicyBasedRecording"],
                            "policyIdentifier": "tag:ComplianceRecordingPolicy",
                            "pairedRecorders": [],
                            "otherRecorders": [],
                        }
                    }),
                );
            }
        }
        call
    }
}

/// What the caller does after ringing.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Script {
    /// Hang up this many milliseconds after the call is established (`None`: stay until the
    /// bot hangs up or the control API's hangup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup_after_ms: Option<u64>,
    /// Give up ringing this many milliseconds after the ring if the bot has not decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_after_ms: Option<u64>,
}

impl Script {
    /// `hangup_after_ms` as a `Duration`.
    pub fn hangup_after(&self) -> Option<Duration> {
        self.hangup_after_ms.map(Duration::from_millis)
    }

    /// `cancel_after_ms` as a `Duration`.
    pub fn cancel_after(&self) -> Option<Duration> {
        self.cancel_after_ms.map(Duration::from_millis)
    }
}

/// Identifiers and names a scenario puts into the call resource. The model fills them from
/// its seeded id generator, so runs with the same seed are reproducible.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallParams {
    /// Graph call id.
    pub call_id: String,
    /// Tenant of the call.
    pub tenant_id: String,
    /// The bot's application (client) id.
    pub app_id: String,
    /// The bot's resource account (applicationInstance) object id.
    pub app_instance_id: String,
    /// The bot's display name.
    pub bot_name: String,
    /// The bot's notification URL (the incoming call's `callbackUri`).
    pub bot_url: String,
    /// The bot's own participant id.
    pub my_participant_id: String,
    /// The caller's participant id.
    pub source_participant_id: String,
    /// Shared by all legs of the conversation.
    pub call_chain_id: String,
    /// The calling user's object id.
    pub caller_id: String,
    /// The PSTN caller's number (E.164).
    pub phone_number: String,
    /// The bot's phone number (E.164, PSTN scenario's `callRoutes`).
    pub bot_phone_number: String,
    /// Random part of the meeting thread id.
    pub thread_key: String,
    /// Opaque `tokenMeetingInfo.token`.
    pub meeting_token: String,
    /// PBR: the other side's user id.
    pub other_user_id: String,
    /// PBR: the other side's participant id.
    pub other_participant_id: String,
}

/// `{"@odata.type": "#microsoft.graph.identity", "id", "displayName", "tenantId"?}`.
fn identity(id: &str, name: &str, tenant: Option<&String>) -> Value {
    let mut v = json!({ "@odata.type": "#microsoft.graph.identity", "id": id });
    if !name.is_empty() {
        v["displayName"] = Value::from(name);
    }
    if let Some(t) = tenant {
        v["tenantId"] = Value::from(t.as_str());
        v["identityProvider"] = Value::from("AAD");
    }
    v
}

/// Adds `@odata.type: #microsoft.graph.identitySet` to an identity-set object.
fn tagged_identity_set(mut set: Value) -> Value {
    if let Some(map) = set.as_object_mut() {
        map.insert(
            "@odata.type".into(),
            Value::from("#microsoft.graph.identitySet"),
        );
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> CallParams {
        CallParams {
            call_id: "c1".into(),
            tenant_id: "t1".into(),
            app_id: "app".into(),
            app_instance_id: "inst".into(),
            bot_name: "bot".into(),
            bot_url: "https://127.0.0.1:1/api/calling".into(),
            phone_number: "+14255550123".into(),
            ..CallParams::default()
        }
    }

    #[test]
    fn p2p_targets_the_application() {
        let c = Scenario::P2p.build_json(&params());
        assert_eq!(c["state"], "incoming");
        assert_eq!(c["targets"][0]["identity"]["application"]["id"], "app");
        assert!(c["source"]["identity"]["user"].is_object());
        assert!(c["chatInfo"].is_null());
    }

    #[test]
    fn pstn_comes_from_a_phone_to_the_instance() {
        let c = Scenario::Pstn.build_json(&params());
        assert_eq!(c["source"]["identity"]["phone"]["id"], "+14255550123");
        assert_eq!(
            c["targets"][0]["identity"]["applicationInstance"]["id"],
            "inst"
        );
        assert_eq!(c["callRoutes"][0]["routingType"], "lookup");
    }

    #[test]
    fn meetings_carry_chat_and_meeting_info() {
        let m = Scenario::Meeting.build_json(&params());
        assert_eq!(
            m["meetingInfo"]["@odata.type"],
            "#microsoft.graph.organizerMeetingInfo"
        );
        let g = Scenario::GroupCall.build_json(&params());
        assert_eq!(
            g["meetingInfo"]["@odata.type"],
            "#microsoft.graph.tokenMeetingInfo"
        );
        assert!(
            g["chatInfo"]["threadId"]
                .as_str()
                .unwrap()
                .starts_with("19:")
        );
        assert!(g["incomingContext"]["sourceParticipantId"].is_string());
    }

    #[test]
    fn policy_recording_carries_bot_data() {
        let c = Scenario::PolicyRecording.build_json(&params());
        assert_eq!(
            c["applicationMetadata"]["botData"]["inviteReasons"][0],
            "PolicyBasedRecording"
        );
        assert!(Scenario::PolicyRecording.is_policy_recording());
    }

    #[test]
    fn every_scenario_reads_as_a_graph_call_and_writes_back() {
        for s in Scenario::ALL {
            let json = s.build_json(&params());
            let call: Call = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(call.id.as_ref().map(|i| i.as_str()), Some("c1"));
            assert_eq!(call.is_policy_based_recording(), s.is_policy_recording());
            assert_eq!(
                call.is_meeting(),
                !matches!(s, Scenario::P2p | Scenario::Pstn)
            );
            assert!(call.source.is_some() && call.targets.as_ref().is_some_and(|t| t.len() == 1));
            let back = serde_json::to_value(&call).unwrap();
            for key in [
                "source",
                "targets",
                "tenantId",
                "myParticipantId",
                "callChainId",
            ] {
                assert_eq!(back[key], json[key], "{s:?} {key}");
            }
            assert_eq!(s.build(&params()), call);
            assert_eq!(Scenario::classify(&call), s);
        }
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            let parsed: Scenario = serde_json::from_value(Value::from(s.name())).unwrap();
            assert_eq!(parsed, s);
        }
        let pbr: Scenario = serde_json::from_str("\"pbr\"").unwrap();
        assert_eq!(pbr, Scenario::PolicyRecording);
    }
}
