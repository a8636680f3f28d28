//! `MediaCallHandler`: gives an application's answers real media. It wraps any
//! [`CallHandler`]; when the application answers a call with app-hosted media, the blob in
//! the answer is replaced by a fresh media session of the [`MediaHost`] (blob v1, negotiable
//! at the host's endpoint), and when the call ends — either side, or the answer failed — the
//! session ends and its room and transport are freed.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use mediabot::adapters::demo_handler::DemoHandler;
//! # use mediabot::adapters::media_handler::MediaCallHandler;
//! # use mediabot::adapters::media_host::{CallBehaviour, MediaHost, MediaHostConfig};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (host, _events) = MediaHost::start(MediaHostConfig::default())?;
//! let behaviour = CallBehaviour::demo("media/greeting-16k.wav".as_ref(), None)?;
//! let handler = MediaCallHandler::new(DemoHandler::default(), host.clone(), behaviour);
//! // Serve `mediabot::adapters::negotiation::router(host)` on the HTTPS address that
//! // `MediaHostConfig::negotiate_base` names, and give `handler` to the bot.
//! # Ok(()) }
//! ```
//!
//! A host that cannot take the call (session table full) turns the answer into a reject with
//! reason `busy`: answering without media would leave the caller in silence.

use crate::call::{CallEvent, Decision, IncomingCall};
use crate::graph::{MediaConfig, RejectReason};

use super::call_handler::CallHandler;
use super::graph_client::BoxFuture;
use super::media_host::{CallBehaviour, MediaHost};

/// A [`CallHandler`] whose app-hosted answers get a real media session (see the module docs).
#[derive(Debug)]
pub struct MediaCallHandler<H> {
    inner: H,
    host: MediaHost,
    behaviour: CallBehaviour,
}

impl<H: CallHandler> MediaCallHandler<H> {
    /// Wraps `inner`; answered calls get `behaviour` on `host`.
    pub fn new(inner: H, host: MediaHost, behaviour: CallBehaviour) -> Self {
        Self {
            inner,
            host,
            behaviour,
        }
    }

    /// The media host.
    pub fn host(&self) -> &MediaHost {
        &self.host
    }
}

impl<H: CallHandler> CallHandler for MediaCallHandler<H> {
    fn on_incoming(&self, call: IncomingCall) -> BoxFuture<'static, Decision> {
        let call_id = call.call_id.clone();
        let decision = self.inner.on_incoming(call);
        let host = self.host.clone();
        let behaviour = self.behaviour.clone();
        Box::pin(async move {
            let mut decision = decision.await;
            let Decision::Answer(answer) = &mut decision else {
                return decision;
            };
            if !matches!(answer.media_config, MediaConfig::AppHosted(_)) {
                return decision;
            }
            match host.create_session(&call_id, behaviour) {
                Ok(blob) => {
                    answer.media_config = MediaConfig::app_hosted(blob.to_json());
                    decision
                }
                Err(e) => {
                    tracing::warn!(call = %call_id, error = %e, "no media session: rejecting");
                    Decision::Reject {
                        reason: RejectReason::Busy,
                    }
                }
            }
        })
    }

    fn on_event(&self, event: &CallEvent) {
        self.inner.on_event(event);
        let (CallEvent::Terminated { call_id, .. }
        | CallEvent::Failed { call_id, .. }
        | CallEvent::Removed { call_id }) = event
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let host = self.host.clone();
        let call_id = call_id.clone();
        runtime.spawn(async move { host.end_session(&call_id).await });
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::adapters::media_host::MediaHostConfig;
    use crate::adapters::shard::ShardConfig;
    use crate::call::Answer;
    use crate::graph::{CallId, Modality};
    use crate::session::blob::MediaSessionBlob;
    use crate::session::registry::{RegistryConfig, SessionPhase};

    /// Answers everything with a placeholder app-hosted blob, or service-hosted media.
    #[derive(Debug)]
    struct Answers(MediaConfig);

    impl CallHandler for Answers {
        fn on_incoming(&self, _call: IncomingCall) -> BoxFuture<'static, Decision> {
            let answer = Answer {
                media_config: self.0.clone(),
                accepted_modalities: vec![Modality::Audio],
                participant_capacity: None,
            };
            Box::pin(std::future::ready(Decision::Answer(answer)))
        }
    }

    fn incoming(id: &str) -> IncomingCall {
        IncomingCall::from_graph(CallId::from(id), Default::default(), Instant::now())
    }

    fn host(max_sessions: usize) -> MediaHost {
        let config = MediaHostConfig {
            negotiate_base: "https://bot.example.com:8445".into(),
            registry: RegistryConfig {
                max_sessions,
                ..RegistryConfig::default()
            },
            shards: ShardConfig {
                shards: 1,
                rt_priority: None,
                ..ShardConfig::default()
            },
            ..MediaHostConfig::default()
        };
        MediaHost::start(config).expect("host").0
    }

    #[tokio::test]
    async fn app_hosted_answers_get_a_real_session_that_ends_with_the_call() {
        let host = host(1);
        let handler = MediaCallHandler::new(
            Answers(MediaConfig::app_hosted("placeholder")),
            host.clone(),
            CallBehaviour::default(),
        );
        let Decision::Answer(answer) = handler.on_incoming(incoming("c1")).await else {
            panic!("expected an answer");
        };
        let blob =
            MediaSessionBlob::parse(answer.media_config.blob().expect("blob")).expect("a v1 blob");
        assert!(
            blob.negotiate_uri
                .starts_with("https://bot.example.com:8445/media/v1/sessions/")
        );
        let call = CallId::from("c1");
        let phase = host.stats(&call).and_then(|s| s.phase);
        assert_eq!(phase, Some(SessionPhase::Offered));

        // The host is full: the next answer becomes a busy reject.
        let second = handler.on_incoming(incoming("c2")).await;
        assert_eq!(
            second,
            Decision::Reject {
                reason: RejectReason::Busy
            }
        );

        handler.on_event(&CallEvent::Terminated {
            call_id: call.clone(),
            result_info: None,
        });
        for _ in 0..100 {
            if host.stats(&call).is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(host.stats(&call).is_none(), "session ended with the call");
    }

    #[tokio::test]
    async fn other_decisions_pass_through_untouched() {
        let host = host(10);
        let service = MediaConfig::service_hosted(Vec::new());
        let handler = MediaCallHandler::new(
            Answers(service.clone()),
            host.clone(),
            CallBehaviour::default(),
        );
        let Decision::Answer(answer) = handler.on_incoming(incoming("c1")).await else {
            panic!("expected an answer");
        };
        assert_eq!(answer.media_config, service);
        assert_eq!(host.host_stats().created, 0);
    }
}
