//! The GlobalToZone stream loop: the only writer of the stream's requests. Reassembles chunks,
//! applies each complete response in one store transaction (flushed to disk), then ACKs it, or
//! NACKs the items that failed validation while the others are applied.

use std::collections::{BTreeMap, HashMap};

use mosaic_core::resource::Owner;
use mosaic_proto::kds::{DiscoveryRequest, DiscoveryResponse, Rejection, ResourceRef};
use tokio::sync::mpsc;
use tonic::Streaming;

use super::{
    error::{SessionError, check_outgoing},
    receive,
    session::SessionCtx,
};
use crate::store::{KdsType, StoreKey};
use mosaic_kds::assemble::{Assembled, Assembler};

/// Runs the stream until it fails; `known` is what the subscribe requests listed, per kind.
pub async fn run(
    ctx: &SessionCtx,
    mut inbound: Streaming<DiscoveryResponse>,
    tx: mpsc::Sender<DiscoveryRequest>,
    mut known: HashMap<KdsType, BTreeMap<StoreKey, u64>>,
) -> SessionError {
    let mut assembler = Assembler::new();
    loop {
        let chunk = match inbound.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return SessionError::Closed("GlobalToZone"),
            Err(status) => return SessionError::from_status(&ctx.zone, "GlobalToZone", &status),
        };
        let response = match assembler.push(chunk) {
            Ok(Some(response)) => response,
            Ok(None) => continue,
            Err(e) => return e.into(),
        };
        let answer = match handle(ctx, &response, &mut known).await {
            Ok(answer) => answer,
            Err(e) => return e,
        };
        if let Err(e) = check_outgoing(
            "GlobalToZone",
            "DiscoveryRequest",
            &answer.r#type,
            &answer,
            ctx.options.max_message_bytes,
        ) {
            return e;
        }
        if tx.send(answer).await.is_err() {
            return SessionError::Closed("GlobalToZone");
        }
    }
}

/// Applies one response; returns its ACK or NACK.
async fn handle(
    ctx: &SessionCtx,
    response: &Assembled,
    known: &mut HashMap<KdsType, BTreeMap<StoreKey, u64>>,
) -> Result<DiscoveryRequest, SessionError> {
    let mut answer = DiscoveryRequest {
        r#type: response.type_url.clone(),
        known: Vec::new(),
        response_nonce: response.nonce.clone(),
        rejected: Vec::new(),
    };
    let kind = match response.type_url.parse::<KdsType>() {
        Ok(kind) if kind.owner() == Owner::Global => kind,
        _ => {
            tracing::warn!(
                r#type = %response.type_url,
                "the global sent a response of a type this zone does not take; rejecting it"
            );
            answer.rejected.push(Rejection {
                r#ref: Some(ResourceRef {
                    r#type: response.type_url.clone(),
                    ..ResourceRef::default()
                }),
                reason: format!(
                    "zone {} does not take {:?} over GlobalToZone: it subscribes to {}",
                    ctx.zone,
                    response.type_url,
                    KdsType::GLOBAL_TO_ZONE.map(KdsType::as_str).join(", ")
                ),
            });
            ctx.insight
                .count_response(&ctx.session_id, &response.type_url, false);
            return Ok(answer);
        }
    };
    let known_for_kind = if response.authoritative {
        known.remove(&kind)
    } else {
        None
    };
    let received = receive::plan(&ctx.store, kind, response, known_for_kind.as_ref())?;
    let changes = ctx.store.apply_sync(&received.batch)?;
    ctx.store.flush().await?;
    for r in &received.rejected {
        let (mesh, name) = r
            .r#ref
            .as_ref()
            .map(|x| (x.mesh.as_str(), x.name.as_str()))
            .unwrap_or_default();
        tracing::warn!(
            r#type = %kind, mesh = %mesh, name = %name, reason = %r.reason,
            "rejecting a resource from the global (NACK); the rest of the response is applied"
        );
    }
    tracing::debug!(
        r#type = %kind,
        nonce = %response.nonce,
        authoritative = response.authoritative,
        received = response.resources.len(),
        removed = response.removed.len(),
        changed = changes.len(),
        rejected = received.rejected.len(),
        global_index = response.global_index,
        "applied a response from the global"
    );
    ctx.insight
        .count_response(&ctx.session_id, kind.as_str(), received.rejected.is_empty());
    answer.rejected = received.rejected;
    Ok(answer)
}
