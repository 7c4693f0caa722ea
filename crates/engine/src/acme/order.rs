//! The ACME account (RFC 8555 §7.3, kept sealed in the store) and the order (§7.4): its
//! DNS-01 challenges (§8.4), validation and finalization with a CSR.

use std::time::Duration;

use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use mailzone_records::{AcmeSettings, Name};
use mailzone_store::Store;

use crate::progress::Progress;
use crate::{EngineError, LoadedConfig};

use super::*;

pub(crate) fn acme_error<'a>(
    settings: &'a AcmeSettings,
    step: &'static str,
) -> impl Fn(instant_acme::Error) -> EngineError + 'a {
    move |e| EngineError::Acme {
        directory: settings.directory.clone(),
        step,
        transient: transient(&e),
        reason: error_chain(&e),
    }
}

/// Problems that the same request will meet again (RFC 8555 §6.7); everything else
/// (network, rate limits, a challenge the CA did not see yet) may pass.
pub(crate) fn transient(e: &instant_acme::Error) -> bool {
    const PERMANENT: [&str; 10] = [
        "malformed",
        "rejectedIdentifier",
        "badCSR",
        "caa",
        "unsupportedIdentifier",
        "badSignatureAlgorithm",
        "externalAccountRequired",
        "userActionRequired",
        "invalidContact",
        "unsupportedContact",
    ];
    match e {
        instant_acme::Error::Api(problem) => !problem
            .r#type
            .as_deref()
            .is_some_and(|t| PERMANENT.iter().any(|p| t.ends_with(p))),
        instant_acme::Error::Unsupported(_) | instant_acme::Error::KeyRejected => false,
        _ => true,
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

pub(crate) fn builder(settings: &AcmeSettings) -> Result<AccountBuilder, EngineError> {
    match &settings.ca_certificate {
        Some(ca) => Account::builder_with_root(&ca.path).map_err(|e| {
            EngineError::Usage(format!(
                "{}: cannot use {} as the CA certificate: {}",
                ca.key_path,
                ca.path.display(),
                error_chain(&e)
            ))
        }),
        None => Account::builder().map_err(acme_error(settings, "setting up HTTPS")),
    }
}

/// The account for the directory: restored from the store, or created and stored.
pub(crate) async fn account(
    settings: &AcmeSettings,
    store: &Store,
    now: i64,
) -> Result<Account, EngineError> {
    if let Some(json) = store.acme_account(&settings.directory).await? {
        let credentials: AccountCredentials = serde_json::from_str(&json).map_err(|e| {
            EngineError::Usage(format!(
                "the stored ACME account for {} is unreadable ({}); delete its row from acme_accounts to make a new one",
                settings.directory,
                e.classify_name()
            ))
        })?;
        return builder(settings)?
            .from_credentials(credentials)
            .await
            .map_err(acme_error(settings, "restoring the account"));
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(settings)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .map_err(acme_error(settings, "creating the account"))?;
    let json = zeroize::Zeroizing::new(serde_json::to_string(&credentials).map_err(|e| {
        EngineError::Usage(format!(
            "cannot store the ACME account: {}",
            e.classify_name()
        ))
    })?);
    store
        .put_acme_account(&settings.directory, &json, now)
        .await?;
    tracing::info!(directory = %settings.directory, "ACME account created");
    Ok(account)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of a JSON error only: its message could quote secret material.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

pub(crate) async fn issue(
    loaded: &LoadedConfig,
    settings: &AcmeSettings,
    account: &Account,
    store: &Store,
    now: i64,
    report: &mut RenewReport,
    progress: &dyn Progress,
) -> Result<(), EngineError> {
    let identifiers: Vec<Identifier> = settings
        .names
        .iter()
        .map(|n| Identifier::Dns(n.as_str().to_string()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(acme_error(settings, "creating the order"))?;
    let challenges = pending_challenges(settings, &mut order).await?;
    report.challenges = challenges.len();
    let mut published = Vec::new();
    let mut result = publish(loaded, store, now, &challenges, &mut published, progress).await;
    if result.is_ok() {
        crate::crash::point("acme-challenge");
        result = validate_and_finalize(settings, &mut order, report).await;
    }
    report
        .leftover_challenges
        .extend(remove(loaded, store, &published).await);
    result
}

/// The DNS-01 challenge of every authorization still pending (a valid one needs none).
pub(crate) async fn pending_challenges(
    settings: &AcmeSettings,
    order: &mut Order,
) -> Result<Vec<Challenge>, EngineError> {
    let mut out = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(acme_error(settings, "reading an authorization"))?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => {
                return Err(EngineError::Acme {
                    directory: settings.directory.clone(),
                    step: "reading an authorization",
                    reason: format!("{} is {other:?}", authz.identifier()),
                    transient: true,
                });
            }
        }
        let identifier = authz.identifier().to_string();
        let challenge = authz
            .challenge(ChallengeType::Dns01)
            .ok_or_else(|| EngineError::Acme {
                directory: settings.directory.clone(),
                step: "reading an authorization",
                reason: format!("the CA offers no dns-01 challenge for {identifier}"),
                transient: false,
            })?;
        let name = Name::host(&identifier).map_err(|e| {
            EngineError::Usage(format!(
                "the CA names an unusable identifier {identifier}: {e}"
            ))
        })?;
        out.push(Challenge {
            name,
            value: challenge.key_authorization().dns_value(),
        });
    }
    Ok(out)
}

/// Tells the CA the challenges are ready, waits for the order, finalizes it with a CSR and
/// writes the chain and key.
pub(crate) async fn validate_and_finalize(
    settings: &AcmeSettings,
    order: &mut Order,
    report: &mut RenewReport,
) -> Result<(), EngineError> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(acme_error(settings, "reading an authorization"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) {
            challenge.set_ready().await.map_err(acme_error(
                settings,
                "telling the CA the challenge is ready",
            ))?;
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(120));
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(acme_error(settings, "waiting for validation"))?;
    if status != OrderStatus::Ready {
        return Err(EngineError::Acme {
            directory: settings.directory.clone(),
            step: "validation",
            reason: invalid_reason(order).await,
            transient: true,
        });
    }
    let (key, reused) = certificate_key(settings)?;
    let csr = csr(settings, &key)?;
    order
        .finalize_csr(&csr)
        .await
        .map_err(acme_error(settings, "finalizing the order"))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(acme_error(settings, "downloading the certificate"))?;
    let leaf = check_chain(settings, &chain, &key)?;
    write_files(settings, &chain, &key, reused)?;
    if !settings.reuse_key {
        write_next_key(settings)?;
    }
    report.outcome = Outcome::Issued;
    report.key_reused = reused;
    report.not_after = Some(leaf.not_after);
    report.renew_at = Some(leaf.renew_at(settings.renew_before));
    Ok(())
}

/// Why the CA marked the order invalid: the challenges' problem documents.
pub(crate) async fn invalid_reason(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let identifier = authz.identifier().to_string();
        if authz.refresh().await.is_err() {
            continue;
        }
        for c in &authz.challenges {
            if let Some(problem) = &c.error {
                reasons.push(format!("{identifier}: {problem}"));
            }
        }
    }
    if reasons.is_empty() {
        "the CA marked the order invalid".into()
    } else {
        format!("the CA marked the order invalid: {}", reasons.join("; "))
    }
}
