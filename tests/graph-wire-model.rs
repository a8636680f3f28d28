//! The Graph calling wire model reads every documented payload shape leniently, writes it back
//! canonically, and never panics on hostile bodies.
//!
//! Fixtures in `tests/fixtures/graph/` are written from `shared/reference/graph-calling.md`;
//! the file name prefix says what each one is (`notification-`, `request-answer-`, `error-`, …).

use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use mediabot::graph::{
    AnswerRequest, Call, CallDirection, CallState, ChangeType, CommsNotifications, EndpointType,
    GraphErrorBody, GraphModelError, IdentityKind, InviteParticipantsRequest, MediaConfig,
    MediaDirection, MediaState, MeetingInfo, Modality, OperationKind, OperationStatus,
    RecordingStatus, RedirectRequest, RejectReason, RejectRequest, ResourceData, ResourceKind,
    RoutingPolicy, RoutingType, TargetDisposition, Tone, TransferRequest,
    UpdateRecordingStatusRequest, is_legacy_skype_body, parse_notifications,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph")
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn notifications(name: &str) -> CommsNotifications {
    parse_notifications(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parses `bytes` as `T`; when it parses, writing and re-reading gives an equal value.
/// Returns the parse result and (when parsed) the written JSON.
fn read_write_read<T>(bytes: &[u8]) -> Result<(T, Value), String>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let first: T = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let written = serde_json::to_value(&first).expect("model values always serialize");
    let second: T = serde_json::from_value(written.clone())
        .unwrap_or_else(|e| panic!("written JSON does not read back: {e}\n{written:#}"));
    assert_eq!(first, second, "round trip changed the value\n{written:#}");
    Ok((first, written))
}

/// Which model type a fixture is, by file-name prefix; returns the written JSON if it parsed.
fn round_trip_by_name(name: &str, bytes: &[u8]) -> Result<Option<Value>, String> {
    let written = if name.starts_with("notification-") {
        let first = parse_notifications(bytes).map_err(|e| e.to_string())?;
        let written = serde_json::to_value(&first).expect("serializes");
        let again = parse_notifications(written.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{name}: written JSON does not read back: {e}"));
        assert_eq!(first, again, "{name}: round trip changed the value");
        written
    } else if name.starts_with("request-answer-") {
        read_write_read::<AnswerRequest>(bytes)?.1
    } else if name.starts_with("request-reject") {
        read_write_read::<RejectRequest>(bytes)?.1
    } else if name.starts_with("request-redirect") {
        read_write_read::<RedirectRequest>(bytes)?.1
    } else if name.starts_with("request-transfer") {
        read_write_read::<TransferRequest>(bytes)?.1
    } else if name.starts_with("request-invite") {
        read_write_read::<InviteParticipantsRequest>(bytes)?.1
    } else if name.starts_with("request-update-recording-status") {
        read_write_read::<UpdateRecordingStatusRequest>(bytes)?.1
    } else if name.starts_with("error-") {
        read_write_read::<GraphErrorBody>(bytes)?.1
    } else if name.starts_with("call-") {
        read_write_read::<Call>(bytes)?.1
    } else if name.starts_with("legacy-") {
        let _ = parse_notifications(bytes);
        let _ = is_legacy_skype_body(bytes);
        return Ok(None);
    } else {
        panic!("fixture {name} has no known prefix");
    };
    Ok(Some(written))
}

/// Keys whose string values are Graph enums.
const ENUM_KEYS: &[&str] = &[
    "state",
    "direction",
    "changeType",
    "endpointType",
    "routingType",
    "mediaType",
    "status",
    "tone",
    "recordingStatus",
    "targetDisposition",
    "audio",
];
/// Keys whose values are arrays of Graph enums.
const ENUM_ARRAY_KEYS: &[&str] = &[
    "requestedModalities",
    "activeModalities",
    "acceptedModalities",
    "routingPolicies",
];
/// Keys holding objects that Graph writes with an `@odata.type`.
const TYPED_OBJECT_KEYS: &[(&str, &str)] = &[
    ("source", "#microsoft.graph.participantInfo"),
    ("answeredBy", "#microsoft.graph.participantInfo"),
    ("info", "#microsoft.graph.participantInfo"),
    ("identity", "#microsoft.graph.identitySet"),
    ("organizer", "#microsoft.graph.identitySet"),
    ("original", "#microsoft.graph.identitySet"),
    ("final", "#microsoft.graph.identitySet"),
    ("initiator", "#microsoft.graph.identitySet"),
    ("chatInfo", "#microsoft.graph.chatInfo"),
    ("incomingContext", "#microsoft.graph.incomingContext"),
    ("resultInfo", "#microsoft.graph.resultInfo"),
    ("toneInfo", "#microsoft.graph.toneInfo"),
    ("mediaState", "#microsoft.graph.callMediaState"),
    ("removedState", "#microsoft.graph.removedState"),
    ("recordingInfo", "#microsoft.graph.recordingInfo"),
    (
        "transferTarget",
        "#microsoft.graph.invitationParticipantInfo",
    ),
];
/// Keys holding arrays whose objects Graph writes with an `@odata.type`.
const TYPED_ARRAY_KEYS: &[(&str, &str)] = &[
    ("targets", "#microsoft.graph.invitationParticipantInfo"),
    ("mediaStreams", "#microsoft.graph.mediaStream"),
    ("callRoutes", "#microsoft.graph.callRoute"),
    ("preFetchMedia", "#microsoft.graph.mediaInfo"),
];
const IDENTITY_KINDS: &[&str] = &[
    "user",
    "application",
    "applicationInstance",
    "phone",
    "guest",
    "encrypted",
];
const INTEGER_KEYS: &[&str] = &[
    "code",
    "subcode",
    "ringingTimeoutInSeconds",
    "sequenceId",
    "timeout",
    "participantCapacity",
    "rosterSequenceNumber",
];

/// Asserts the written JSON is canonical: lowerCamelCase enums, integers for codes, `subcode`
/// spelled so, `@odata.type` where Graph writes it. `in_error` relaxes checks inside error
/// bodies (whose `code`s are strings).
fn assert_canonical(v: &Value, path: &str, in_error: bool) {
    match v {
        Value::Object(map) => {
            assert!(!map.contains_key("subCode"), "{path}: subCode written");
            for (k, child) in map {
                let here = format!("{path}.{k}");
                if ENUM_KEYS.contains(&k.as_str())
                    && let Some(s) = child.as_str()
                {
                    assert!(
                        !s.starts_with(|c: char| c.is_ascii_uppercase()),
                        "{here}: enum not lowerCamelCase: {s}"
                    );
                }
                if ENUM_ARRAY_KEYS.contains(&k.as_str()) {
                    for s in child
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        assert!(
                            !s.starts_with(|c: char| c.is_ascii_uppercase()),
                            "{here}: enum not lowerCamelCase: {s}"
                        );
                    }
                }
                if !in_error && INTEGER_KEYS.contains(&k.as_str()) {
                    assert!(child.is_i64(), "{here}: not an integer: {child}");
                }
                if let Some((_, t)) = TYPED_OBJECT_KEYS.iter().find(|(key, _)| key == k)
                    && child.is_object()
                {
                    assert_eq!(child["@odata.type"], *t, "{here}: @odata.type");
                }
                if let Some((_, t)) = TYPED_ARRAY_KEYS.iter().find(|(key, _)| key == k) {
                    for item in child.as_array().into_iter().flatten() {
                        assert_eq!(item["@odata.type"], *t, "{here}[]: @odata.type");
                    }
                }
                if k == "identity" || k == "organizer" {
                    for kind in IDENTITY_KINDS {
                        if let Some(identity) = child.get(*kind) {
                            assert_eq!(
                                identity["@odata.type"], "#microsoft.graph.identity",
                                "{here}.{kind}: @odata.type"
                            );
                        }
                    }
                }
                if k == "meetingInfo" || k == "mediaConfig" {
                    assert!(child["@odata.type"].is_string(), "{here}: @odata.type");
                }
                assert_canonical(child, &here, in_error || k == "error");
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_canonical(item, &format!("{path}[{i}]"), in_error);
            }
        }
        _ => {}
    }
}

#[test]
fn every_fixture_parses_and_round_trips_canonically() {
    let names = fixture_names();
    assert!(names.len() >= 20, "fixtures missing: {names:?}");
    for name in &names {
        let written = round_trip_by_name(name, &fixture(name))
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        if let Some(written) = &written {
            assert_canonical(written, name, name.starts_with("error-"));
        }
        if name.starts_with("notification-") {
            let written = written.expect("notifications are written");
            assert_eq!(
                written["@odata.type"],
                "#microsoft.graph.commsNotifications"
            );
            for n in written["value"].as_array().expect("value array") {
                assert_eq!(
                    n["@odata.type"], "#microsoft.graph.commsNotification",
                    "{name}"
                );
                if n["resourceUrl"]
                    .as_str()
                    .is_some_and(|u| u.matches('/').count() == 3)
                {
                    assert_eq!(
                        n["resourceData"]["@odata.type"], "#microsoft.graph.call",
                        "{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn incoming_p2p_call_from_a_teams_user() {
    let batch = notifications("notification-incoming-p2p-teams-user.json");
    let n = &batch.value[0];
    assert_eq!(n.change_type, Some(ChangeType::Created));
    assert_eq!(
        n.call_id().expect("call id"),
        "57dab8b1-894c-409a-b240-bd8beae78896"
    );
    assert_eq!(n.resource_kind(), Some(ResourceKind::Call));
    let call = n.call_data().expect("typed call");
    assert_eq!(call.state, Some(CallState::Incoming));
    assert_eq!(call.direction, Some(CallDirection::Incoming));
    assert_eq!(
        call.requested_modalities,
        Some(vec![Modality::Audio, Modality::Video])
    );
    let source = call.source.as_ref().expect("source");
    let (kind, user) = source
        .identity
        .as_ref()
        .and_then(|i| i.primary())
        .expect("identity");
    assert_eq!(kind, IdentityKind::User);
    assert_eq!(user.display_name.as_deref(), Some("John"));
    assert_eq!(user.identity_provider.as_deref(), Some("AAD"));
    assert_eq!(source.endpoint_type, Some(EndpointType::Default));
    assert_eq!(source.country_code.as_deref(), Some("US"));
    let target = &call.targets.as_ref().expect("targets")[0];
    let target_kind = target
        .identity
        .as_ref()
        .and_then(|i| i.primary())
        .map(|(k, _)| k);
    assert_eq!(target_kind, Some(IdentityKind::Application));
    assert_eq!(
        call.my_participant_id.as_ref().map(|p| p.as_str()),
        target.id.as_deref()
    );
    assert!(!call.is_meeting());
    assert!(!call.is_policy_based_recording());
    assert_eq!(call.extra["@odata.etag"], "W/\"5445\"");
    assert_eq!(call.call_routes, Some(vec![]));
}

#[test]
fn incoming_call_from_a_phone_number() {
    let batch = notifications("notification-incoming-pstn.json");
    let n = &batch.value[0];
    // No resourceData.id: the id comes from resourceUrl.
    assert_eq!(
        n.call_id().expect("call id"),
        "3a1f0b00-5c8d-4f3e-9a61-2c2b1f0e7d44"
    );
    let call = n.call_data().expect("typed call");
    assert!(call.id.is_none());
    let phone = call
        .source
        .as_ref()
        .and_then(|s| s.identity.as_ref())
        .and_then(|i| i.phone.as_ref());
    assert_eq!(phone.and_then(|p| p.id.as_deref()), Some("+12345678901"));
    let route = &call.call_routes.as_ref().expect("routes")[0];
    assert_eq!(route.routing_type, Some(RoutingType::Forwarded));
    assert!(
        route
            .final_
            .as_ref()
            .and_then(|f| f.application_instance.as_ref())
            .is_some()
    );
    let target = &call.targets.as_ref().expect("targets")[0];
    assert!(
        target
            .identity
            .as_ref()
            .and_then(|i| i.application_instance.as_ref())
            .is_some()
    );
}

#[test]
fn meeting_invitation_carries_chat_info_and_token_meeting_info() {
    let batch = notifications("notification-incoming-meeting-invitation.json");
    let n = &batch.value[0];
    assert_eq!(
        n.callback_uri.as_deref(),
        Some("https://bot.contoso.com/api/calling")
    );
    let call = n.call_data().expect("typed call");
    assert!(call.is_meeting());
    let chat = call.chat_info.as_ref().expect("chatInfo");
    assert!(
        chat.thread_id
            .as_deref()
            .is_some_and(|t| t.ends_with("@thread.v2"))
    );
    assert_eq!(chat.message_id.as_deref(), Some("1691292138662"));
    let Some(MeetingInfo::Token(token)) = &call.meeting_info else {
        panic!("expected tokenMeetingInfo, got {:?}", call.meeting_info);
    };
    assert!(token.token.as_deref().is_some_and(|t| t.starts_with("eyJ")));
    let ctx = call.incoming_context.as_ref().expect("incomingContext");
    assert_eq!(ctx.observed_participant_id, ctx.source_participant_id);
    assert!(ctx.observed_participant_id.is_some());
    assert_eq!(
        call.source.as_ref().and_then(|s| s.region.as_deref()),
        Some("apac")
    );
}

#[test]
fn policy_based_recording_invitation_is_recognised() {
    let batch = notifications("notification-incoming-policy-recording.json");
    let call = batch.value[0].call_data().expect("typed call");
    assert!(call.is_policy_based_recording());
    let bot = call.bot_data().expect("botData");
    assert_eq!(bot.media_hosted_region.as_deref(), Some("USEA"));
    assert_eq!(
        bot.policy_identifier.as_deref(),
        Some("Tag:ComplianceRecordingPolicy")
    );
    assert_eq!(
        bot.user
            .as_ref()
            .and_then(|u| u.participation_method.as_deref()),
        Some("callee")
    );
    let other = bot.other_side_user.as_ref().expect("otherSideUser");
    assert_eq!(other.participation_method.as_deref(), Some("caller"));
    assert_eq!(
        other.on_behalf_of.as_ref().map(|o| &o["id"]),
        Some(&json!("6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0"))
    );
    assert_eq!(bot.paired_recorders.as_ref().map(Vec::len), Some(1));
    assert_eq!(bot.other_recorders.as_ref().map(Vec::len), Some(0));
    assert!(matches!(call.meeting_info, Some(MeetingInfo::Token(_))));
    // Not PBR: the P2P call.
    let p2p = notifications("notification-incoming-p2p-teams-user.json");
    assert!(
        !p2p.value[0]
            .call_data()
            .expect("call")
            .is_policy_based_recording()
    );
}

#[test]
fn state_updates_including_minimal_ones() {
    let establishing = notifications("notification-establishing.json");
    let n = &establishing.value[0];
    assert_eq!(n.change_type, Some(ChangeType::Updated));
    assert_eq!(
        n.call_data().and_then(|c| c.state.clone()),
        Some(CallState::Establishing)
    );

    let minimal = notifications("notification-established-minimal.json");
    let n = &minimal.value[0];
    let call = n.call_data().expect("typed call");
    assert_eq!(call.state, Some(CallState::Established));
    assert!(call.id.is_none() && call.direction.is_none());
    assert_eq!(
        call.extra.len(),
        2,
        "only @odata.id and @odata.etag: {:?}",
        call.extra
    );
    assert_eq!(
        n.call_id().expect("from resourceUrl"),
        "57dab8b1-894c-409a-b240-bd8beae78896"
    );

    let terminated = notifications("notification-terminated.json");
    let n = &terminated.value[0];
    assert_eq!(n.change_type, Some(ChangeType::Deleted));
    let call = n.call_data().expect("typed call");
    assert_eq!(call.state, Some(CallState::Terminated));
    let result = call.result_info.as_ref().expect("resultInfo");
    assert_eq!((result.code, result.subcode), (Some(200), Some(4521)));
    assert!(result.is_success());
    assert_eq!(call.termination_reason.as_deref(), Some("AppTransferred"));
}

#[test]
fn numbers_as_strings_and_sub_code_spelling() {
    let batch = notifications("notification-terminated-numbers-as-strings.json");
    let ended = batch.value[0]
        .call_data()
        .expect("call")
        .result_info
        .clone()
        .expect("result");
    assert_eq!((ended.code, ended.subcode), (Some(200), Some(5001)));
    let failed_transfer = batch.value[1].call_data().expect("call");
    let result = failed_transfer.result_info.as_ref().expect("result");
    assert_eq!((result.code, result.subcode), (Some(500), Some(7000)));
    assert_eq!(failed_transfer.ringing_timeout_in_seconds, Some(30));
    let tone = failed_transfer.tone_info.as_ref().expect("toneInfo");
    assert_eq!(
        (tone.sequence_id, tone.tone.clone()),
        (Some(12), Some(Tone::Tone1))
    );
    let written = serde_json::to_value(&batch).expect("serializes");
    let r = &written["value"][1]["resourceData"]["resultInfo"];
    assert_eq!((&r["code"], &r["subcode"]), (&json!(500), &json!(7000)));
}

#[test]
fn batch_with_several_notifications_keeps_order_and_kinds() {
    let batch = notifications("notification-batch.json");
    let kinds: Vec<_> = batch.value.iter().map(|n| n.resource_kind()).collect();
    assert_eq!(
        kinds,
        [
            Some(ResourceKind::Call),
            Some(ResourceKind::Participants),
            Some(ResourceKind::ContentSharingSessions),
            Some(ResourceKind::Call),
        ]
    );
    assert!(batch.value.iter().all(|n| {
        n.call_id()
            .is_some_and(|id| id == "57dab8b1-894c-409a-b240-bd8beae78896")
    }));
    let first = batch.value[0].call_data().expect("call");
    assert_eq!(
        first.media_state.as_ref().and_then(|m| m.audio.clone()),
        Some(MediaState::Active)
    );
    assert_eq!(batch.value[1].participants_data().map(<[_]>::len), Some(1));
    assert!(
        matches!(&batch.value[2].resource_data, Some(ResourceData::Raw(Value::Array(a))) if a.len() == 1)
    );
    assert_eq!(batch.value[3].change_type, Some(ChangeType::Deleted));
}

#[test]
fn roster_update_with_an_array_resource_data() {
    let batch = notifications("notification-roster-update.json");
    let n = &batch.value[0];
    assert_eq!(n.resource_kind(), Some(ResourceKind::Participants));
    assert_eq!(
        n.call_id().expect("call id"),
        "491f0b00-ffff-4bc9-a43e-b226498ec22a"
    );
    let roster = n.participants_data().expect("typed roster");
    assert_eq!(roster.len(), 2);
    let alice = &roster[0];
    let streams = alice.media_streams.as_ref().expect("streams");
    assert_eq!(streams[0].source_id.as_deref(), Some("2"));
    assert_eq!(streams[1].direction, Some(MediaDirection::SendOnly));
    assert_eq!(streams[1].media_type, Some(Modality::Video));
    assert_eq!(
        alice
            .recording_info
            .as_ref()
            .and_then(|r| r.recording_status.clone()),
        Some(RecordingStatus::Recording)
    );
    assert_eq!(alice.roster_sequence_number, Some(4));
    assert_eq!(alice.metadata.as_deref(), Some("custom-metadata"));
    assert!(alice.extra.contains_key("isIdentityAnonymized"));
    let left = &roster[1];
    assert_eq!(left.is_muted, Some(true));
    assert_eq!(
        left.removed_state
            .as_ref()
            .and_then(|r| r.reason.as_deref()),
        Some("Participant left")
    );
}

#[test]
fn delta_roster_update_is_typed() {
    let batch = notifications("notification-roster-delta.json");
    let n = &batch.value[0];
    assert_eq!(n.resource_kind(), Some(ResourceKind::Participants));
    assert!(
        n.participants_data().is_none(),
        "an object, not a full roster"
    );
    let delta = n.delta_participants().expect("deltaParticipants");
    assert_eq!(delta.sequence_number, Some(9));
    let removed = &delta.participants.as_ref().expect("participants")[0];
    assert_eq!(removed.roster_sequence_number, Some(9));
    assert_eq!(
        removed
            .removed_state
            .as_ref()
            .and_then(|r| r.reason.as_deref()),
        Some("Disconnected")
    );
    assert!(
        notifications("notification-roster-update.json").value[0]
            .delta_participants()
            .is_none()
    );
}

#[test]
fn operation_deleted_notification() {
    let batch = notifications("notification-operation-deleted.json");
    let n = &batch.value[0];
    assert_eq!(n.change_type, Some(ChangeType::Deleted));
    let Some(ResourceKind::Operation(op_id)) = n.resource_kind() else {
        panic!(
            "expected an operation resource, got {:?}",
            n.resource_kind()
        );
    };
    assert_eq!(op_id, "0fe0623f-d628-42ed-b4bd-8ac290072cc5");
    assert_eq!(
        n.call_id().expect("call id"),
        "57dab8b1-894c-409a-b240-bd8beae78896"
    );
    let op = n.operation_data().expect("typed operation");
    assert_eq!(op.kind(), OperationKind::InviteParticipants);
    assert_eq!(op.status, Some(OperationStatus::Completed));
    assert_eq!(op.id.as_ref(), Some(&op_id));
    assert_eq!(
        op.client_context.as_deref(),
        Some("d45324c1-fcb5-430a-902c-f20af696537c")
    );
    assert_eq!(op.result_info.as_ref().and_then(|r| r.subcode), Some(0));
    assert!(op.extra["participants"].is_array());
    assert!(n.call_data().is_none());
}

#[test]
fn answer_reject_and_redirect_bodies_as_the_docs_show_them() -> TestResult {
    let answer: AnswerRequest = serde_json::from_slice(&fixture("request-answer-app-hosted.json"))?;
    assert_eq!(answer.accepted_modalities, Some(vec![Modality::Audio]));
    assert_eq!(
        answer.media_config.as_ref().and_then(MediaConfig::blob),
        Some("<serialized media session>")
    );
    assert_eq!(answer.participant_capacity, Some(200));
    let options = answer.call_options.as_ref().expect("callOptions");
    assert!(options.is_incoming());
    assert_eq!(options.is_delta_roster_enabled, Some(true));
    // What the bot writes for the same decision is exactly the documented body.
    let mut built = AnswerRequest::app_hosted_audio("<serialized media session>");
    built.callback_uri = Some("https://bot.example.com/api/calls/vm-3".into());
    built.call_options = answer.call_options.clone();
    built.participant_capacity = Some(200);
    let doc: Value = serde_json::from_slice(&fixture("request-answer-app-hosted.json"))?;
    assert_eq!(serde_json::to_value(&built)?, doc);

    let service: AnswerRequest =
        serde_json::from_slice(&fixture("request-answer-service-hosted.json"))?;
    let Some(MediaConfig::ServiceHosted(config)) = &service.media_config else {
        panic!(
            "expected service-hosted media, got {:?}",
            service.media_config
        );
    };
    assert_eq!(config.pre_fetch_media.as_ref().map(Vec::len), Some(2));

    let reject: RejectRequest = serde_json::from_slice(&fixture("request-reject.json"))?;
    assert_eq!(reject, RejectRequest::new(RejectReason::Busy));
    assert_eq!(serde_json::to_value(&reject)?, json!({"reason": "busy"}));
    let reject: RejectRequest =
        serde_json::from_slice(&fixture("request-reject-with-callback.json"))?;
    assert_eq!(reject.reason, Some(RejectReason::Forbidden));

    let redirect: RedirectRequest = serde_json::from_slice(&fixture("request-redirect.json"))?;
    assert_eq!(redirect.timeout, Some(30));
    let doc: Value = serde_json::from_slice(&fixture("request-redirect.json"))?;
    assert_eq!(
        serde_json::to_value(&redirect)?,
        doc,
        "redirect is written as documented"
    );

    let simulring: RedirectRequest =
        serde_json::from_slice(&fixture("request-redirect-simulring-beta.json"))?;
    assert_eq!(simulring.targets.as_ref().map(Vec::len), Some(2));
    assert_eq!(
        simulring.target_disposition,
        Some(TargetDisposition::SimultaneousRing)
    );
    assert_eq!(
        (simulring.mask_callee, simulring.mask_caller),
        (Some(false), Some(true))
    );
    assert_eq!(
        simulring.routing_policies,
        Some(vec![RoutingPolicy::DisableForwarding])
    );
    Ok(())
}

#[test]
fn transfer_invite_and_recording_status_bodies() -> TestResult {
    let transfer: TransferRequest = serde_json::from_slice(&fixture("request-transfer.json"))?;
    let target = transfer.transfer_target.as_ref().expect("transferTarget");
    assert!(
        target
            .identity
            .as_ref()
            .and_then(|i| i.phone.as_ref())
            .is_some()
    );
    assert_eq!(target.endpoint_type, Some(EndpointType::Default));
    let invite: InviteParticipantsRequest =
        serde_json::from_slice(&fixture("request-invite-participants.json"))?;
    let first = &invite.participants.as_ref().expect("participants")[0];
    assert_eq!(
        first.replaces_call_id.as_ref().map(|c| c.as_str()),
        Some("a7ebfb2d-871e-419c-87af-27290b22e8db")
    );
    let status: UpdateRecordingStatusRequest =
        serde_json::from_slice(&fixture("request-update-recording-status.json"))?;
    assert_eq!(status.status, Some(RecordingStatus::Recording));
    Ok(())
}

#[test]
fn pascal_case_from_the_dotnet_sdk_equals_the_camel_case_parse() {
    let camel = notifications("notification-incoming-p2p-teams-user.json");
    let pascal = notifications("notification-incoming-p2p-pascal-case.json");
    assert_eq!(pascal, camel);
    assert_eq!(
        serde_json::to_value(&pascal).ok(),
        serde_json::to_value(&camel).ok()
    );
}

#[test]
fn unknown_fields_and_annotations_survive_a_round_trip() -> TestResult {
    let mut doc: Value =
        serde_json::from_slice(&fixture("notification-incoming-p2p-teams-user.json"))?;
    let paths: [&[&str]; 7] = [
        &[],
        &["value", "0"],
        &["value", "0", "resourceData"],
        &["value", "0", "resourceData", "source"],
        &["value", "0", "resourceData", "source", "identity"],
        &["value", "0", "resourceData", "source", "identity", "user"],
        &["value", "0", "resourceData", "targets", "0"],
    ];
    for (i, path) in paths.iter().enumerate() {
        let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
        let obj = doc
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .expect("path exists");
        obj.insert(format!("futureField{i}"), json!({"nested": [i, "x", null]}));
        obj.insert(format!("@odata.futureAnnotation{i}"), json!(i));
    }
    doc.pointer_mut("/value/0")
        .and_then(Value::as_object_mut)
        .expect("notification")
        .insert(
            "subscriptionExpirationDateTime".into(),
            json!("2026-11-27T11:00:00Z"),
        );
    let parsed = parse_notifications(doc.to_string().as_bytes())?;
    let written = serde_json::to_value(&parsed)?;
    for (i, path) in paths.iter().enumerate() {
        let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
        let obj = written.pointer(&pointer).expect("path written");
        assert_eq!(
            obj[format!("futureField{i}")],
            json!({"nested": [i, "x", null]}),
            "{pointer}"
        );
        assert_eq!(
            obj[format!("@odata.futureAnnotation{i}")],
            json!(i),
            "{pointer}"
        );
    }
    assert_eq!(
        written["value"][0]["subscriptionExpirationDateTime"],
        "2026-11-27T11:00:00Z"
    );
    assert_eq!(
        written["value"][0]["resourceData"]["@odata.etag"],
        "W/\"5445\""
    );
    assert_eq!(
        written["value"][0]["resourceData"]["@odata.id"],
        "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896"
    );
    Ok(())
}

#[test]
fn missing_odata_types_are_tolerated_where_the_property_implies_them() -> TestResult {
    let body = json!({"value": [{
        "changeType": "created",
        "resourceUrl": "/communications/calls/abc",
        "resourceData": {
            "state": "incoming",
            "source": {"identity": {"user": {"id": "u"}}},
            "meetingInfo": {"organizer": {"user": {"id": "o"}}},
            "chatInfo": {"threadId": "19:x", "messageId": "0"}
        }
    }]});
    let batch = parse_notifications(body.to_string().as_bytes())?;
    let call = batch.value[0].call_data().expect("typed by resourceUrl");
    assert!(matches!(call.meeting_info, Some(MeetingInfo::Organizer(_))));
    let written = serde_json::to_value(&batch)?;
    assert_canonical(&written, "implied", false);
    assert_eq!(
        written["value"][0]["resourceData"]["@odata.type"],
        "#microsoft.graph.call"
    );
    Ok(())
}

#[test]
fn legacy_skype_format_body_is_recognised_for_a_204() {
    let legacy = fixture("legacy-skype-incoming.json");
    assert!(is_legacy_skype_body(&legacy));
    assert_eq!(
        parse_notifications(&legacy),
        Err(GraphModelError::LegacyFormat)
    );
    for name in fixture_names()
        .iter()
        .filter(|n| n.starts_with("notification-"))
    {
        assert!(!is_legacy_skype_body(&fixture(name)), "{name}");
    }
}

#[test]
fn error_bodies_read_and_write_like_graph() -> TestResult {
    let body: GraphErrorBody = serde_json::from_slice(&fixture("error-too-many-requests.json"))?;
    assert_eq!(body.error.code, "TooManyRequests");
    let inner = body.error.inner_error.as_ref().expect("innerError");
    assert_eq!(inner.status.as_deref(), Some("429"));
    assert_eq!(
        inner.request_id.as_deref(),
        Some("94fb3b52-452a-4535-a601-69e0a90e3aa2")
    );
    let built = serde_json::to_value(GraphErrorBody::too_many_requests())?;
    assert_eq!(built["error"]["code"], "TooManyRequests");
    assert_eq!(built["error"]["innerError"]["status"], "429");

    let gone: GraphErrorBody = serde_json::from_slice(&fixture("error-call-not-found.json"))?;
    assert!(gone.is_call_not_found());
    assert_eq!(gone.error.code, GraphErrorBody::call_not_found().error.code);
    Ok(())
}

#[test]
fn garbage_gives_an_error_not_a_panic() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"42".to_vec(),
        b"\"value\"".to_vec(),
        b"{".to_vec(),
        b"{\"value\":".to_vec(),
        b"{\"value\":null}".to_vec(),
        b"{\"value\":{}}".to_vec(),
        b"{\"value\":[1]}".to_vec(),
        b"{\"value\":[{\"changeType\":7}]}".to_vec(),
        b"{\"value\":[{\"resourceUrl\":[]}]}".to_vec(),
        b"{\"value\":[]}garbage".to_vec(),
        b"\xff\xfe\x00{".to_vec(),
        b"{\"value\":[{\"resource\":\"\xff\xfe\"}]}".to_vec(),
        b"{\"value\":[{\"changeType\":\"\\ud800\"}]}".to_vec(),
        b"{\"value\":[],\"value\":[]}".to_vec(),
        b"{\"value\":[{\"x\":1e999}]}".to_vec(),
        b"{\"value\":[{\"x\":-1e999}]}".to_vec(),
        [
            b"{\"value\":[{\"x\":1".as_slice(),
            &[b'0'; 500],
            b"e99999}]}",
        ]
        .concat(),
    ];
    for case in &cases {
        assert!(
            parse_notifications(case).is_err(),
            "accepted: {:?}",
            String::from_utf8_lossy(case)
        );
    }
    // Errors carry a short client-safe message.
    for case in &cases {
        if let Err(e) = parse_notifications(case) {
            assert!(e.to_string().len() < 220, "{e}");
        }
    }
}

#[test]
fn truncated_fixtures_give_errors() {
    for name in fixture_names() {
        let bytes = fixture(&name);
        let last_close = bytes.iter().rposition(|b| *b == b'}').expect("object");
        for cut in 0..=last_close {
            let prefix = &bytes[..cut];
            if name.starts_with("notification-") {
                assert!(
                    parse_notifications(prefix).is_err(),
                    "{name} cut at {cut} parsed"
                );
            } else {
                assert!(round_trip_by_name(&name, prefix).is_err() || name.starts_with("legacy-"));
            }
        }
    }
}

#[test]
fn deep_nesting_is_an_error_or_kept_never_a_stack_overflow() {
    let deep = |depth: usize| -> Vec<u8> {
        let mut s = String::from(
            r#"{"value":[{"resourceUrl":"/communications/calls/a","resourceData":{"x":"#,
        );
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push_str("}}]}");
        s.into_bytes()
    };
    for depth in [1_000, 100_000, 1_000_000] {
        assert!(parse_notifications(&deep(depth)).is_err(), "depth {depth}");
    }
    // Shallow enough for the JSON reader: kept as an unknown field of the call.
    let batch = parse_notifications(&deep(100)).expect("depth 100 is fine");
    assert!(
        batch.value[0]
            .call_data()
            .expect("call")
            .extra
            .contains_key("x")
    );
    // Deep objects too, and in typed positions.
    let mut s = String::from(r#"{"value":[{"resourceData":{"source":"#);
    s.push_str(&"{\"identity\":".repeat(50_000));
    s.push_str("{}");
    s.push_str(&"}".repeat(50_000));
    s.push_str("}}]}");
    assert!(parse_notifications(s.as_bytes()).is_err());
}

#[test]
fn huge_numbers_in_typed_positions_are_errors() {
    let mut typed_checks = 0;
    for bad in [
        r#""code":99999999999"#,
        r#""code":"99999999999999999999999999""#,
        r#""code":1e300"#,
        r#""code":1.5"#,
        r#""code":-9223372036854775809"#,
        r#""subcode":18446744073709551616"#,
    ] {
        let body = format!(
            r##"{{"value":[{{"resourceUrl":"/communications/calls/a","resourceData":{{"@odata.type":"#microsoft.graph.call","state":"terminated","resultInfo":{{{bad}}}}}}}]}}"##
        );
        let Ok(batch) = parse_notifications(body.as_bytes()) else {
            continue; // rejected by the JSON reader itself: fine
        };
        let n = &batch.value[0];
        // The notification is kept (raw) but does not read as a call.
        assert!(n.call_data().is_none(), "{bad}");
        assert!(
            matches!(n.parse_call(), Err(GraphModelError::Shape { .. })),
            "{bad}"
        );
        assert_eq!(n.call_id().map(|c| c.into_string()), Some("a".to_owned()));
        typed_checks += 1;
    }
    assert!(
        typed_checks >= 4,
        "only {typed_checks} cases reached the typed reader"
    );
    for bad in [
        r#"{"timeout":1e400}"#,
        r#"{"timeout":"1e400"}"#,
        r#"{"timeout":4294967296}"#,
    ] {
        assert!(
            serde_json::from_str::<RedirectRequest>(bad).is_err(),
            "{bad}"
        );
    }
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_fixtures_never_panic_and_what_parses_round_trips() {
    const ALPHABET: &[u8] = b"{}[]\":,0123456789-+.eE \\ntfaulsInN\xff\x00";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0usize;
    for name in fixture_names() {
        let original = fixture(&name);
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..=rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => {
                        let end = (at + rng.below(16)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        let end = (at + rng.below(32)).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        let to = rng.below(bytes.len());
                        bytes.splice(to..to, chunk);
                    }
                }
            }
            // Round-trip equality is asserted inside for whatever parses.
            if round_trip_by_name(&name, &bytes).is_ok() {
                parsed += 1;
            }
            let _ = is_legacy_skype_body(&bytes);
        }
    }
    assert!(
        parsed > 0,
        "no mutation parsed: the round-trip check never ran"
    );
}

#[test]
fn large_batches_parse_without_a_size_limit() {
    let one = json!({
        "changeType": "updated",
        "resourceUrl": "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896",
        "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "established"}
    });
    let body = json!({"value": vec![one; 20_000]}).to_string();
    assert!(body.len() > 1 << 20);
    let batch = parse_notifications(body.as_bytes()).expect("large batch");
    assert_eq!(batch.value.len(), 20_000);
    assert!(
        batch
            .value
            .iter()
            .all(|n| n.call_data().and_then(|c| c.state.clone()) == Some(CallState::Established))
    );
}
