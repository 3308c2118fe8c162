//! An SDK interceptor that measures this machine's clock against AWS's from
//! the `Date` header of every response the client receives anyway (no extra
//! call): the local time before each attempt is sent and when its answer
//! arrives, and the header, go to [`AwsOffset`]. Attached to every client
//! `wiring` builds, so the first response of a run already corrects it.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use chrono::{DateTime, Utc};

use crate::domain::clock::DateSample;
use crate::ports::clock::AwsOffset;

/// Feeds the offset measurement; clone it into every client.
#[derive(Debug, Clone)]
pub struct ClockProbe {
    offset: Arc<AwsOffset>,
}

impl ClockProbe {
    pub fn new(offset: Arc<AwsOffset>) -> Self {
        ClockProbe { offset }
    }
}

/// When the current attempt left, on this machine's clock.
#[derive(Debug, Clone, Copy)]
struct AttemptSent(DateTime<Utc>);

impl Storable for AttemptSent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ClockProbe {
    fn name(&self) -> &'static str {
        "ClockProbe"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(AttemptSent(Utc::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let received = Utc::now();
        let Some(AttemptSent(sent)) = cfg.load::<AttemptSent>().copied() else { return Ok(()) };
        let headers = ctx.response().headers();
        if let Some(sample) = DateSample::from_headers(sent, received, headers.get("date"), headers.get("age")) {
            self.offset.record(&sample);
        }
        Ok(())
    }
}
